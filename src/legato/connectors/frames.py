"""Data frames in and out of connectors: anything a task holds becomes a pyarrow Table on the
way in, and an Arrow table leaves as the kind of frame the caller asked for.

pyarrow, pandas and polars are imported when a frame of theirs is met, never at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

#: The kinds of frame an extract returns.
FrameKind = Literal["pandas", "arrow", "polars"]
FRAME_KINDS: tuple[str, ...] = ("pandas", "arrow", "polars")


def to_arrow(frame: Any) -> pa.Table:
    """``frame`` (a pandas or polars DataFrame, a pyarrow Table or RecordBatch, or a list of
    dicts) as a pyarrow Table, with view and dictionary columns as their plain types."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        table = frame
    elif isinstance(frame, pa.RecordBatch):
        table = pa.Table.from_batches([frame])
    elif isinstance(frame, Sequence) and not isinstance(frame, str | bytes):
        if not all(isinstance(row, Mapping) for row in frame):
            raise TypeError("a list given as a frame must hold dicts (one per row)")
        table = pa.Table.from_pylist(list(frame))
    else:
        module = type(frame).__module__.split(".", 1)[0]
        if module == "pandas":
            table = pa.Table.from_pandas(frame, preserve_index=False)
        elif module == "polars":
            table = frame.to_arrow()
        else:
            raise TypeError(
                "a frame must be a pandas or polars DataFrame, a pyarrow Table or a list of "
                f"dicts, not {type(frame).__name__}"
            )
    return plain(table)


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
    """``table`` as a frame of ``kind`` (see FRAME_KINDS)."""
    if kind == "arrow":
        return table
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValueError(f"as_ must be one of {', '.join(FRAME_KINDS)}, not {kind!r}")
