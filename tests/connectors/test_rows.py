"""The one conversion of rows every connector uses: each kind of frame and a list of dicts
give the same rows, in batches of the size asked, as the same JSON."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from legato.connectors.idempotency import idempotency_key
from legato.connectors.rows import dumps, encode, from_arrow, row_batches, to_arrow
from legato.definitions.context import Context

ROWS = [{"id": i, "amount": i * 1.5, "name": f"n{i}"} for i in range(7)]


def frames() -> dict[str, object]:
    table = pa.Table.from_pylist(ROWS)
    # Three chunks of 3, 3 and 1 rows: batches must not stop at a chunk's end.
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=3))
    return {
        "list": ROWS,
        "iterator": iter(ROWS),
        "pandas": pd.DataFrame(ROWS),
        "polars": pl.DataFrame(ROWS),
        "arrow": chunked,
        "record batch": table.to_batches()[0],
    }


@pytest.mark.parametrize("kind", list(frames()))
def test_every_kind_of_rows_gives_the_same_batches(kind: str) -> None:
    batches = list(row_batches(frames()[kind], 2))
    assert [len(b) for b in batches] == [2, 2, 2, 1]
    assert [row for b in batches for row in b] == ROWS


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_a_frames_nan_and_missing_values_are_null_in_json(kind: str) -> None:
    values = {"x": [1.5, math.nan, None]}
    frame = {
        "pandas": pd.DataFrame(values),
        "polars": pl.DataFrame(values),
        "arrow": pa.table(values),
    }[kind]
    (batch,) = row_batches(frame, 10)
    assert [dumps(row) for row in batch] == ['{"x":1.5}', '{"x":null}', '{"x":null}']


def test_values_json_does_not_know_are_written_as_text() -> None:
    row = {
        "at": datetime(2026, 11, 20, 6, 30, tzinfo=UTC),
        "day": date(2026, 11, 20),
        "clock": time(6, 30),
        "took": timedelta(minutes=1, seconds=30),
        "total": Decimal("12.50"),
        "id": UUID(int=1),
        "raw": b"\x00\xff",
        "count": np.int64(3),
        "name": "Zoë",
    }
    assert json.loads(encode(row)) == {
        "at": "2026-11-20T06:30:00+00:00",
        "day": "2026-11-20",
        "clock": "06:30:00",
        "took": 90.0,
        "total": "12.50",
        "id": "00000000-0000-0000-0000-000000000001",
        "raw": "AP8=",
        "count": 3,
        "name": "Zoë",
    }
    assert encode(b"as is") == b"as is"
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps({"x": math.nan})
    with pytest.raises(TypeError, match="a row value of type object cannot be written"):
        dumps({"x": object()})


def test_a_list_of_dicts_takes_the_columns_of_every_row() -> None:
    table = to_arrow([{"a": 1}, {"a": 2, "b": "late"}])
    assert table.column_names == ["a", "b"]
    assert table.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": "late"}]


def test_arrow_leaves_as_the_frame_asked_for() -> None:
    table = to_arrow(ROWS)
    assert from_arrow(table, "pandas").equals(pd.DataFrame(ROWS))
    assert from_arrow(table, "polars").equals(pl.DataFrame(ROWS))
    assert from_arrow(table, "arrow") is table
    with pytest.raises(ValueError, match="a frame is one of pandas, polars, arrow, not 'csv'"):
        from_arrow(table, "csv")


def test_what_is_not_rows_is_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="not one dict: wrap it in a list"):
        next(row_batches({"id": 1}, 10))
    with pytest.raises(TypeError, match="not one int"):
        next(row_batches(5, 10))
    with pytest.raises(ValueError, match="at least 1"):
        next(row_batches(ROWS, 0))
    with pytest.raises(TypeError, match="or a list of dicts, not str"):
        to_arrow("id,name")


def test_idempotency_keys_name_the_run_task_map_index_send_and_position() -> None:
    log = logging.getLogger("test")
    ctx = Context("run-7", "nightly", "push", 2, None, {}, log)
    mapped = Context("run-7", "nightly", "push", 1, None, {}, log, map_index=4)
    assert idempotency_key(ctx, None, 0) == "run-7/push/0"
    assert idempotency_key(ctx, "crm", 3) == "run-7/push/crm/3"
    assert idempotency_key(mapped, "crm", 3) == "run-7/push/4/crm/3"
    assert idempotency_key(None, "crm", 3) == "crm/3"
    with pytest.raises(ValueError, match=r"pass ctx=ctx \(or key=\.\.\.\)"):
        idempotency_key(None, None, 0)
