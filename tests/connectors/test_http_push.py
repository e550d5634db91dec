"""Activation over HTTP: rows pushed in JSON batches with idempotency keys, to a real local
endpoint that stores each key once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from legato.connectors import http
from legato.connectors.idempotency import idempotency_key
from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.connectors.api_server import Api, api_client, serve
from tests.helpers import door, make_project

ROWS = [{"id": i, "name": f"n{i}"} for i in range(1050)]


def test_rows_go_in_batches_each_with_its_own_key() -> None:
    with serve(Api()) as api, api_client(api.base_url) as client:
        pushed = http.push(client, "/push", iter(ROWS), batch_size=100, key="crm")
    assert (pushed.rows, pushed.batches) == (1050, 11)
    assert [p.key for p in api.pushes] == [idempotency_key(None, "crm", n) for n in range(11)]
    assert len(set(api.stored)) == 11
    assert [row for p in api.pushes for row in p.rows] == ROWS


def test_a_batch_the_client_retries_keeps_its_key() -> None:
    # The third request is answered 503; the client's retry sends it again as it was.
    with serve(Api(fail={2: 503})) as api, api_client(api.base_url) as client:
        pushed = http.push(client, "/push", ROWS, batch_size=100, key="crm")
    assert pushed.batches == 11 and len(api.pushes) == 12
    assert api.pushes[2].status == 503 and api.pushes[2].key == api.pushes[3].key
    assert sum(len(rows) for rows in api.stored.values()) == 1050


def test_frames_are_sent_as_json_with_dates_and_decimals_as_text() -> None:
    table = pa.table(
        {
            "day": [date(2026, 11, 20)] * 3,
            "at": [datetime(2026, 11, 20, 6, 30, tzinfo=UTC)] * 3,
            "total": [Decimal("12.50")] * 3,
        }
    )
    with serve(Api()) as api, api_client(api.base_url) as client:
        http.push(client, "/push", table, batch_size=2, envelope="records", key="k")
    assert [len(p.rows["records"]) for p in api.pushes] == [2, 1]
    assert api.pushes[0].rows["records"][0] == {
        "day": "2026-11-20",
        "at": "2026-11-20T06:30:00+00:00",
        "total": "12.50",
    }


def test_a_key_outside_ascii_goes_percent_encoded() -> None:
    with serve(Api()) as api, api_client(api.base_url) as client:
        http.push(client, "/push", ROWS[:1], key="städte")
    assert [p.key for p in api.pushes] == ["st%C3%A4dte/0"]


def test_a_refused_batch_raises_and_stops_the_push() -> None:
    with serve(Api(fail={1: 422})) as api, api_client(api.base_url) as client:
        with pytest.raises(httpx.HTTPStatusError, match="422"):
            http.push(client, "/push", ROWS, batch_size=500)
        assert len(api.pushes) == 2


CODE = """
import os

import httpx

from legato import pipeline, task
from legato.connectors import http


@task(retries=1)
def activate(ctx):
    rows = [{"id": i} for i in range(1000)]
    with httpx.Client(base_url=os.environ["API"]) as client:
        return http.push(client, "/push", rows, batch_size=100, ctx=ctx).rows


@pipeline
def daily_summary():
    activate()
"""


def test_a_retried_attempt_sends_its_batches_with_the_keys_they_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first attempt's fourth batch is answered 503 (this client does not retry), so the
    # attempt fails after three batches went through; the task's retry sends them all again.
    with serve(Api(fail={3: 503})) as api:
        monkeypatch.setenv("API", api.base_url)
        root = make_project(tmp_path / "p", CODE)
        with Workspace(root) as ws:
            run = door(ws).runs.run_pipeline("daily_summary")
            assert run.state == RunState.SUCCEEDED
            first, second = api.pushes[:4], api.pushes[4:]
            assert first[0].key == f"{run.id}/activate//push/0"
            assert [p.status for p in first] == [200, 200, 200, 503] and len(second) == 10
            assert [p.key for p in first] == [p.key for p in second[:4]]
            assert len({p.key for p in second}) == 10
            ids = sorted(r["id"] for rows in api.stored.values() for r in rows)
            assert ids == list(range(1000))  # each row stored once

            # The next run's push is a new one: none of its keys is an earlier run's.
            assert door(ws).runs.run_pipeline("daily_summary").state == RunState.SUCCEEDED
        assert not {p.key for p in api.pushes[14:]} & {p.key for p in second}
        assert len(api.stored) == 20
