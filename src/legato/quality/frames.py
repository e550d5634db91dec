"""Data as an Arrow table to check column-wise: pandas and polars frames (zero-copy where
their memory allows), Arrow tables and record batches, and lists of dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from legato.quality.outcome import SAMPLE_ROWS, Found, sample_of

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_view", "column", "decoded", "library", "rows_found", "rows_where", "simple"]


def library(value: Any) -> str:
    """The top-level package of ``value``'s type: "pandas", "polars", "pyarrow", ..."""
    return type(value).__module__.split(".", 1)[0]


def arrow_view(value: Any) -> pa.Table:
    """``value`` as an Arrow table (see the module docstring)."""
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    kind = library(value)
    if kind == "pandas" and hasattr(value, "columns"):
        return pa.Table.from_pandas(value, preserve_index=False)
    if kind == "polars":
        if hasattr(value, "collect"):  # a LazyFrame
            value = value.collect()
        return value.to_arrow()
    rows = isinstance(value, Sequence) and not isinstance(value, str | bytes)
    if rows and all(isinstance(row, Mapping) for row in value):
        return pa.Table.from_pylist(list(value))
    raise TypeError(
        "checks take a pandas or polars DataFrame, a pyarrow Table or RecordBatch, or a list "
        f"of dicts, not {type(value).__name__}"
    )


def simple(array: Any) -> Any:
    """``array`` with string and binary views as large strings and binaries, which every
    compute function takes."""
    import pyarrow as pa

    t = array.type
    if pa.types.is_string_view(t):
        return array.cast(pa.large_string())
    if pa.types.is_binary_view(t):
        return array.cast(pa.large_binary())
    return array


def column(table: pa.Table, name: str) -> Any:
    """The column ``name`` of ``table`` (dictionary-encoded as it is); a KeyError naming the
    columns there are if none."""
    if name not in table.column_names:
        shown = ", ".join(table.column_names[:20]) or "none"
        raise KeyError(f"no column {name!r} (columns: {shown})")
    return simple(table.column(name))


def rows_where(table: pa.Table, mask: Any) -> tuple[int, list[dict[str, Any]]]:
    """How many rows ``mask`` (a boolean array, nulls false) selects, and a sample of them."""
    import pyarrow.compute as pc

    mask = pc.fill_null(mask, False)
    failed = pc.sum(mask).as_py() or 0
    if not failed:
        return 0, []
    picked = pc.indices_nonzero(mask).slice(0, SAMPLE_ROWS)
    return failed, sample_of(table.take(picked).to_pylist())


def rows_found(table: pa.Table, mask: Any, what: str) -> Found:
    """The rows ``mask`` selects as what a check found: failing ones, if any."""
    failed, sample = rows_where(table, mask)
    total = table.num_rows
    message = f"{failed} of {total} rows {what}" if failed else f"all {total} rows pass"
    return Found(ok=not failed, message=message, failed=failed, total=total, sample=sample)


def decoded(values: Any) -> Any:
    """``values`` with dictionary encoding undone."""
    import pyarrow as pa

    if pa.types.is_dictionary(values.type):
        return values.cast(values.type.value_type)
    return values
