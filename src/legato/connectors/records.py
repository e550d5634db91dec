"""Rows as connectors take and give them: pandas, polars and pyarrow frames and lists of
dicts turned into Arrow tables and back, rows in batches, and JSON for the values Arrow
gives (dates, decimals) that the json module does not know.

pyarrow (and pandas or polars when asked for) are imported when first needed, so importing
a connector costs nothing at start-up.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Into", "dumps", "into_frame", "row_batches", "table_of_records", "to_arrow"]

#: What a read gives back: a pandas DataFrame, a polars DataFrame or a pyarrow Table.
Into = Literal["pandas", "polars", "arrow"]
INTO: tuple[str, ...] = ("pandas", "polars", "arrow")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


# One encoder for every call: json.dumps with options builds a new one each time, which
# costs more than encoding a small record.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default, ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON of ``value``; dates and times as ISO 8601, decimals and UUIDs as strings,
    bytes as base64."""
    return _ENCODER.encode(value)


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
    DataFrame, or a list of dicts (one per row)."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if isinstance(data, list) and all(isinstance(row, Mapping) for row in data):
        return table_of_records(data)
    raise TypeError(
        "rows must be a pandas, polars or pyarrow table, or a list of dicts; "
        f"got {type(data).__name__}"
    )


def into_frame(table: pa.Table, into: str) -> Any:
    """``table`` as ``into`` asks: ``"pandas"``, ``"polars"`` or ``"arrow"``."""
    if into == "arrow":
        return table
    if into == "pandas":
        return table.to_pandas()
    if into == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValueError(f"into={into!r}: use one of {', '.join(INTO)}")


def row_batches(rows: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in lists of at most ``size`` dicts. A frame is converted a batch at a time
    and an iterable of dicts is consumed as it goes, so a large input is never copied
    whole."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    module = type(rows).__module__.split(".")[0]
    if module in ("pandas", "polars", "pyarrow"):
        for batch in to_arrow(rows).to_batches(max_chunksize=size):
            if batch.num_rows:
                yield batch.to_pylist()
        return
    if isinstance(rows, Mapping) or not isinstance(rows, Iterable):
        raise TypeError(
            "rows must be an iterable of dicts or a pandas, polars or pyarrow table; "
            f"got {type(rows).__name__}"
        )
    it = iter(rows)
    while batch_rows := list(islice(it, size)):
        yield batch_rows
