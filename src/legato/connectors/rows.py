"""Rows as every connector takes and gives them: pandas, polars and pyarrow frames and lists
of dicts turned into Arrow tables and back, rows read in batches of dicts, and rows as JSON
(dates and times as ISO 8601, decimals and UUIDs as text, bytes as base64, NaN as null).

pyarrow (and pandas or polars when asked for) are imported when first needed, so importing
a connector costs nothing at start-up.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FRAME_KINDS",
    "FrameKind",
    "dumps",
    "encode",
    "from_arrow",
    "plain",
    "row_batches",
    "table_of_records",
    "to_arrow",
]

#: What a read gives back: a pandas DataFrame, a polars DataFrame or a pyarrow Table.
FrameKind = Literal["pandas", "polars", "arrow"]
FRAME_KINDS: tuple[str, ...] = ("pandas", "polars", "arrow")

_FRAMES = ("pandas", "polars", "pyarrow")


def _library(value: Any) -> str:
    """The top-level package of ``value``'s type: "pandas", "polars", "pyarrow", ..."""
    return type(value).__module__.split(".", 1)[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    # numpy scalars (a row of an object column) know their Python value.
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"a row value of type {type(value).__name__} cannot be written as JSON")


# One encoder for every call: json.dumps with options builds a new one each time, which
# costs more than encoding a small row. NaN is refused rather than written as the NaN token
# no JSON parser outside Python takes; frames' NaN are nulls by the time they get here.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), default=_json_default, ensure_ascii=False, allow_nan=False
)


def dumps(value: Any) -> str:
    """Compact JSON of ``value`` (see the module docstring for the values json does not
    know)."""
    return _ENCODER.encode(value)


def encode(item: Any) -> bytes:
    """One message's body: ``bytes`` as given, anything else as compact UTF-8 JSON."""
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    return dumps(item).encode("utf-8")


def table_of_records(records: list[Any], schema: pa.Schema | None = None) -> pa.Table:
    """A table of ``records`` (dicts). Its columns are those of every record, not only the
    first's as ``Table.from_pylist`` would have them; ``schema`` fixes them instead."""
    import pyarrow as pa

    if schema is not None:
        return pa.Table.from_pylist(records, schema=schema)
    if not records:
        return pa.table({})
    return pa.Table.from_struct_array(pa.array(records))


def to_arrow(data: Any) -> pa.Table:
    """``data`` as an Arrow table: a pyarrow Table or RecordBatch, a pandas or polars
    DataFrame, or a sequence of dicts (one per row)."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    library = _library(data)
    if library == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if library == "polars":
        return data.to_arrow()
    rows = isinstance(data, Sequence) and not isinstance(data, str | bytes)
    if rows and all(isinstance(row, Mapping) for row in data):
        return table_of_records(list(data))
    raise TypeError(
        "rows must be a pandas or polars DataFrame, a pyarrow Table or a list of dicts, "
        f"not {type(data).__name__}"
    )


def plain(table: pa.Table) -> pa.Table:
    """``table`` with string and binary views as large strings and binaries, and dictionary
    columns decoded: the types every writer (CSV, databases) takes."""
    import pyarrow as pa

    def simple(t: pa.DataType) -> pa.DataType:
        if pa.types.is_dictionary(t):
            return simple(t.value_type)
        if pa.types.is_string_view(t):
            return pa.large_string()
        if pa.types.is_binary_view(t):
            return pa.large_binary()
        return t

    wanted = pa.schema([f.with_type(simple(f.type)) for f in table.schema])
    return table if wanted.equals(table.schema) else table.cast(wanted)


def from_arrow(table: pa.Table, kind: str) -> Any:
    """``table`` as a frame of ``kind`` (one of FRAME_KINDS)."""
    if kind == "arrow":
        return table
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValueError(f"a frame is one of {', '.join(FRAME_KINDS)}, not {kind!r}")


def row_batches(rows: Any, size: int) -> Iterator[list[Any]]:
    """``rows`` in lists of ``size`` (the last one shorter), in order.

    A frame (pandas, polars, pyarrow) gives dicts, converted a slice at a time so a large
    one is never copied whole, with NaN as None. Any other iterable (of dicts, or of any
    JSON value or bytes) is consumed as it goes.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size!r}")
    if _library(rows) in _FRAMES:
        for part in _frame_slices(rows, size):
            yield _nan_as_null(to_arrow(part)).to_pylist()
        return
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Iterable):
        hint = ": wrap it in a list" if isinstance(rows, Mapping) else ""
        raise TypeError(
            "rows must be an iterable of rows (dicts) or a pandas, polars or pyarrow table, "
            f"not one {type(rows).__name__}{hint}"
        )
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _frame_slices(frame: Any, size: int) -> Iterator[Any]:
    # Slices of the frame itself, not of one Arrow copy of it: a pandas frame is converted
    # a slice at a time. Slices are exact, so a batch never stops at an Arrow chunk's end.
    library = _library(frame)
    if library == "pandas":
        for start in range(0, len(frame), size):
            yield frame.iloc[start : start + size]
    elif library == "polars":
        yield from frame.iter_slices(n_rows=size)
    else:
        for start in range(0, frame.num_rows, size):
            yield frame.slice(start, size)


def _nan_as_null(table: pa.Table) -> pa.Table:
    """``table`` with the NaN of its float columns as nulls (polars and Arrow keep NaN apart
    from null; JSON has no NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type):
            column = table.column(i)
            nan = pc.is_nan(column)
            if pc.any(nan).as_py():
                null = pa.scalar(None, field.type)
                table = table.set_column(i, field, pc.if_else(nan, null, column))
    return table
