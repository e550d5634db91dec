"""The metadata of a task's output that its assets' materializations record: row count,
columns and types, size and a preview, for pandas, polars and Arrow frames and lists of
dicts, with what the task added (``ctx.add_metadata``).

Computed in the process that ran the task, from the value in memory, only for tasks that
produce assets; nothing here imports a frame library: a value is recognised by the module
its type comes from, and only asked what its own library answers cheaply.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from legato.security.masking import Masker

#: Rows a preview shows.
PREVIEW_ROWS = 5
#: Characters a value of a preview keeps (longer ones are cut, with "…").
PREVIEW_CHARS = 120
#: Columns a preview and the schema list at most.
MAX_COLUMNS = 100
#: Rows of a list of dicts read to find its columns and estimate its size.
_SAMPLE = 100


def describe(value: Any, stored_bytes: int | None, added: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata of ``value``: ``rows``, ``columns`` and ``preview`` where it has them,
    ``bytes`` (``stored_bytes`` when the result store knows them, else an estimate in
    memory; ``bytes_exact`` says which), and ``values``: ``added`` by the task. Never
    raises: a value that cannot be described gets what could be found."""
    out: dict[str, Any] = {}
    try:
        out.update(_shape(value))
    except Exception as exc:  # a frame library's surprise must not fail a finished task
        out["error"] = f"cannot describe the output: {type(exc).__name__}"
    estimate = out.pop("estimate", None)
    if stored_bytes is not None:
        out["bytes"], out["bytes_exact"] = stored_bytes, True
    elif isinstance(estimate, int):
        out["bytes"], out["bytes_exact"] = estimate, False
    if added:
        out["values"] = dict(added)
    return out


def describe_masked(metadata: Any, masker: Masker) -> Any:
    """``metadata`` with the secret values ``masker`` knows masked in every string."""
    if isinstance(metadata, str):
        return masker.mask(metadata)
    if isinstance(metadata, list):
        return [describe_masked(v, masker) for v in metadata]
    if isinstance(metadata, dict):
        return {k: describe_masked(v, masker) for k, v in metadata.items()}
    return metadata


def _shape(value: Any) -> dict[str, Any]:
    library = type(value).__module__.partition(".")[0]
    name = type(value).__name__
    if library == "pandas" and name == "DataFrame":
        return _pandas(value)
    if library == "polars" and name == "DataFrame":
        return _polars(value)
    if library == "pyarrow" and name in ("Table", "RecordBatch"):
        return _arrow(value)
    if isinstance(value, list | tuple):
        return _records(value)
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}"
            if library != "builtins" else name}  # fmt: skip


def _pandas(df: Any) -> dict[str, Any]:
    columns = [{"name": str(c), "type": str(t)} for c, t in df.dtypes.items()]
    head = df.head(PREVIEW_ROWS)
    return {
        "rows": len(df),
        "columns": columns[:MAX_COLUMNS],
        # Shallow: a deep count walks every Python object of the frame.
        "estimate": int(df.memory_usage(index=True, deep=False).sum()),
        "preview": [_row(r) for r in head.to_dict("records")],
    }


def _polars(df: Any) -> dict[str, Any]:
    columns = [{"name": str(c), "type": str(t)} for c, t in df.schema.items()]
    return {
        "rows": df.height,
        "columns": columns[:MAX_COLUMNS],
        "estimate": int(df.estimated_size()),
        "preview": [_row(r) for r in df.head(PREVIEW_ROWS).to_dicts()],
    }


def _arrow(table: Any) -> dict[str, Any]:
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    return {
        "rows": table.num_rows,
        "columns": columns[:MAX_COLUMNS],
        "estimate": int(table.nbytes),
        "preview": [_row(r) for r in table.slice(0, PREVIEW_ROWS).to_pylist()],
    }


def _records(items: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(items)}
    sample = items[:_SAMPLE]
    if sample:
        per_item = sum(_size_of(x) for x in sample) / len(sample)
        out["estimate"] = int(per_item * len(items)) + sys.getsizeof(items)
    if sample and all(isinstance(x, Mapping) for x in sample):
        types: dict[str, str] = {}
        for row in sample:
            for key, v in row.items():
                if v is not None and str(key) not in types:
                    types[str(key)] = type(v).__name__
                types.setdefault(str(key), "NoneType")
        out["columns"] = [{"name": k, "type": t} for k, t in list(types.items())[:MAX_COLUMNS]]
        out["preview"] = [_row(r) for r in sample[:PREVIEW_ROWS]]
    return out


def _size_of(item: Any) -> int:
    if isinstance(item, Mapping):
        return sys.getsizeof(item) + sum(
            sys.getsizeof(k) + sys.getsizeof(v) for k, v in item.items()
        )
    return sys.getsizeof(item)


def _row(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): _cell(v) for k, v in list(row.items())[:MAX_COLUMNS]}


def _cell(value: Any) -> Any:
    """A value as JSON can hold it, cut to PREVIEW_CHARS."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy's scalars, as frames hand them out
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    text = f"<{len(value)} bytes>" if isinstance(value, bytes) else str(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"

