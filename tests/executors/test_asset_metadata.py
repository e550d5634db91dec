"""The metadata of a task's output: rows, columns and types, size and a preview for pandas,
polars and Arrow frames and lists of dicts; values JSON can hold, long ones cut."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from legato.definitions.context import MAX_ADDED_METADATA
from legato.executors.asset_metadata import PREVIEW_CHARS, describe, describe_masked
from legato.security.masking import Masker
from legato.testing import build_context

ROWS = [
    {"id": i, "amount": i * 1.5, "day": dt.date(2026, 1, i + 1), "name": f"n{i}"}
    for i in range(8)
]

#: pandas 3 gives text a dtype of its own ("str"); pandas 2 "object".
TEXT = str(pd.DataFrame(ROWS)["name"].dtype)


@pytest.mark.parametrize(
    ("value", "types"),
    [
        (pd.DataFrame(ROWS), ["int64", "float64", "object", TEXT]),
        (pl.DataFrame(ROWS), ["Int64", "Float64", "Date", "String"]),
        (pa.Table.from_pylist(ROWS), ["int64", "double", "date32[day]", "string"]),
        (ROWS, ["int", "float", "date", "str"]),
    ],
    ids=["pandas", "polars", "arrow", "list-of-dicts"],
)
def test_frames_and_records(value: Any, types: list[str]) -> None:
    meta = describe(value, None, {})
    assert meta["rows"] == 8
    assert meta["columns"] == [
        {"name": n, "type": t} for n, t in zip(["id", "amount", "day", "name"], types, strict=True)
    ]
    assert meta["bytes"] > 0 and meta["bytes_exact"] is False  # an estimate in memory
    assert meta["preview"][:2] == [
        {"id": 0, "amount": 0.0, "day": "2026-01-01", "name": "n0"},
        {"id": 1, "amount": 1.5, "day": "2026-01-02", "name": "n1"},
    ]
    assert len(meta["preview"]) == 5


def test_stored_size_values_cut_and_what_the_task_added() -> None:
    rows = [{"text": "y" * 1000, "blob": b"\x00" * 9, "price": Decimal("1.10"),
             "nan": float("nan")}]  # fmt: skip
    meta = describe(rows, 4096, {"source": "s3://drop"})
    assert (meta["bytes"], meta["bytes_exact"]) == (4096, True)
    (row,) = meta["preview"]
    assert len(row["text"]) == PREVIEW_CHARS and row["text"].endswith("…")
    assert (row["blob"], row["price"], row["nan"]) == ("<9 bytes>", "1.10", "nan")
    assert meta["values"] == {"source": "s3://drop"}
    assert describe(42, None, {}) == {"type": "int"}
    assert describe(["a", "b"], None, {})["rows"] == 2


def test_secrets_are_masked_in_every_string() -> None:
    meta = describe([{"url": "https://u:hunter2@x"}], None, {"note": "key hunter2"})
    masked = describe_masked(meta, Masker.of(["hunter2"]))
    assert masked["preview"] == [{"url": "https://u:****@x"}]
    assert masked["values"] == {"note": "key ****"}


def test_add_metadata_takes_json_within_its_cap() -> None:
    ctx = build_context()
    ctx.add_metadata(source="a", rows_late=2)
    ctx.add_metadata(source="b")
    assert ctx.added_metadata == {"source": "b", "rows_late": 2}
    with pytest.raises(ValueError, match="JSON values only"):
        ctx.add_metadata(when=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=str(MAX_ADDED_METADATA)):
        ctx.add_metadata(big="x" * MAX_ADDED_METADATA)
    assert ctx.added_metadata == {"source": "b", "rows_late": 2}  # a refused call adds nothing
