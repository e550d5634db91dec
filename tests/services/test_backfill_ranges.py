"""A backfill of ten years of hours: kept and answered as ranges plus counts, its keys read a
page at a time, its runs made for exactly the partitions it holds, once each. Once per store
backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from legato.scheduler.tick import Scheduler
from legato.services.partition_views import KeyRange
from legato.services.service_errors import ServiceError
from legato.services.workspace import Workspace
from tests.helpers import door

CODE = """
from legato import pipeline, task
from legato.partitions import hourly


@task(in_process=True)
def load() -> int:
    return 1


@pipeline(partitions=hourly(start="2015-01-01", tz="UTC"))
def hours():
    load()
"""
START = datetime(2015, 1, 1, tzinfo=UTC)
COUNT = 100_000
NOW = START + timedelta(hours=COUNT)


def _hour(i: int) -> str:
    return (START + timedelta(hours=i)).isoformat(timespec="minutes")


@pytest.fixture
def ws(backend_ws: Workspace) -> Workspace:
    return backend_ws


def test_a_ten_year_backfill_is_kept_as_ranges_and_runs_each_partition_once(
    ws: Workspace,
) -> None:
    d = door(ws)
    for i in (2, 3, 50_000):  # succeeded already: left out of the backfill
        assert d.runs.run_pipeline("hours", partition=_hour(i)).state.value == "succeeded"
    auto = d.automation
    made = auto.create_backfill("hours", first=_hour(0), last=_hour(COUNT - 1), max_concurrent=3)

    view = auto.backfill(made.id)
    assert view.total == COUNT - 3 and view.not_started == COUNT - 3
    assert view.ranges == (
        KeyRange(_hour(0), _hour(1), 2),
        KeyRange(_hour(4), _hour(49_999), 49_996),
        KeyRange(_hour(50_001), _hour(COUNT - 1), COUNT - 50_001),
    )
    assert view.keys == () and view.left_off == 0
    # What the store keeps for it is a few stretches of the range, not 99,997 keys.
    assert len(json.dumps(made.keys.to_json())) < 300

    page = auto.backfill_keys(made.id, offset=49_996, limit=3)
    assert [(k.key, k.state) for k in page.keys] == [
        (_hour(49_998), "not started"), (_hour(49_999), "not started"),
        (_hour(50_001), "not started"),
    ]
    assert page.total == COUNT - 3 and page.next_offset == 49_999
    last = auto.backfill_keys(made.id, offset=COUNT - 4, limit=10)
    assert [k.key for k in last.keys] == [_hour(COUNT - 1)] and last.next_offset is None

    sched = Scheduler(auto)
    sched.tick(ws.clock())
    sched.tick(ws.clock())  # three under way already: nothing more
    queued = [r for r in ws.store.queue.queued_runs() if r.backfill_id == made.id]
    assert [r.partition for r in queued] == [_hour(0), _hour(1), _hour(4)]
    for r in queued:
        d.runs.execute(r.id)
    sched.tick(ws.clock())
    runs = ws.store.browse.list_runs(backfill_id=made.id, limit=None)
    assert sorted(r.partition or "" for r in runs) == [
        _hour(i) for i in (0, 1, 4, 5, 6, 7)
    ]  # each once, in the backfill's order, the partitions that had run skipped
    first = auto.backfill_keys(made.id, limit=4)
    assert [(k.key, k.state) for k in first.keys] == [
        (_hour(0), "succeeded"), (_hour(1), "succeeded"), (_hour(4), "succeeded"),
        (_hour(5), "queued"),
    ]
    assert auto.backfill(made.id).runs == {"succeeded": 3, "queued": 3}


def test_named_keys_stay_named_and_pages_refuse_wrong_bounds(ws: Workspace) -> None:
    auto = door(ws).automation
    made = auto.create_backfill("hours", keys=[_hour(9), _hour(1), _hour(9)])
    view = auto.backfill(made.id)
    assert view.keys == (_hour(9), _hour(1)) and view.ranges == () and view.total == 2
    with pytest.raises(ServiceError, match="limit"):
        auto.backfill_keys(made.id, limit=0)
    with pytest.raises(ServiceError, match="offset"):
        auto.backfill_keys(made.id, offset=-1)
