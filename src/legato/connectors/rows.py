"""Rows as messages: a list of dicts, a pandas or polars DataFrame or a pyarrow Table read in
batches of JSON-encoded rows, and the idempotency key each message carries."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.definitions.context import Context


def key_prefix(ctx: Context | None, key: str | None) -> str:
    """What every idempotency key of one publish starts with: the run, the task (and its map
    index) from ``ctx``, then ``key`` when given, so two publishes of one task differ. Not the
    attempt: a retried attempt sends the keys of the first one, and consumers drop repeats."""
    if ctx is None:
        if not key:
            raise ValueError(
                "idempotency keys come from the task's context: pass ctx=ctx (or key=...)"
            )
        return key
    parts = [ctx.run_id, ctx.task]
    if ctx.map_index is not None:
        parts.append(str(ctx.map_index))
    if key:
        parts.append(key)
    return "/".join(parts)


def batches(rows: Any, size: int) -> Iterator[list[bytes]]:
    """``rows`` as lists of at most ``size`` encoded messages, in order.

    A dict (or any JSON value) becomes its JSON text; ``bytes`` go as they are. Frames are
    read a batch at a time, so a large one is never copied whole.
    """
    if size < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {size!r}")
    for chunk in _chunks(rows, size):
        yield [encode(item) for item in chunk]


def encode(item: Any) -> bytes:
    """One message's body: ``bytes`` as given, anything else as compact JSON."""
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    return json.dumps(item, default=_json_default, separators=(",", ":"), allow_nan=False).encode()


def _chunks(rows: Any, size: int) -> Iterator[list[Any]]:
    kind = type(rows).__module__.split(".", 1)[0]
    if kind == "pyarrow" and hasattr(rows, "to_batches"):
        for record_batch in rows.to_batches(max_chunksize=size):
            yield record_batch.to_pylist()
    elif kind == "polars" and hasattr(rows, "iter_slices"):
        for frame in rows.iter_slices(n_rows=size):
            yield frame.to_dicts()
    elif kind == "pandas" and hasattr(rows, "iloc"):
        for start in range(0, len(rows), size):
            part = rows.iloc[start : start + size]
            # NaN and NaT are not JSON: they go as null.
            part = part.astype(object).where(part.notna(), None)
            yield part.to_dict(orient="records")
    elif isinstance(rows, dict | str | bytes):
        raise TypeError(
            f"rows must be a list of rows (dicts), a DataFrame or an Arrow table, got one "
            f"{type(rows).__name__}: wrap it in a list"
        )
    elif isinstance(rows, Iterable):
        chunk: list[Any] = []
        for item in rows:
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    else:
        raise TypeError(
            f"rows must be a list of rows (dicts), a DataFrame or an Arrow table, "
            f"got {type(rows).__name__}"
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp, numpy datetime64 wrappers
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"a row value of type {type(value).__name__} cannot be sent as JSON")
