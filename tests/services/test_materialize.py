"""Materializing an asset: a run of its producing pipeline limited to the producing task and
its upstream; upstream tasks reuse what the newest alike run made while it is still good
(same partition, params and code; result kept; assets fresh), the rest is skipped. Once per
store backend; the clock is injected, so staleness comes by moving it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.domain.records import TaskRunRecord
from legato.domain.states import RunState, TaskState
from legato.services.actor import Actor
from legato.services.door import Door
from legato.services.service_errors import Forbidden, NotFoundError, ServiceError
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

#: ``sales`` (daily) makes cleaned orders, then daily sales and a store report from them;
#: ``plain`` (no partitions, a param) makes a base table fresh within an hour, then a top
#: table; ``import.orders`` is only read.
CODE = '''
from datetime import timedelta

from legato import Asset, Secret, pipeline, task
from legato.partitions import daily


@task(consumes="shop.orders", in_process=True)
def extract(ctx) -> list[dict]:
    return [{"order_id": 1, "amount": 10.0, "day": ctx.partition}]


@task(produces=Asset("warehouse.orders", freshness=timedelta(hours=1)), in_process=True)
def clean(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["amount"] >= 0]


@task(produces="warehouse.daily_sales", in_process=True)
def daily_sales(rows: list[dict]) -> list[dict]:
    return [{"total": sum(r["amount"] for r in rows)}]


@task(produces="reports.stores", in_process=True)
def store_report(rows: list[dict]) -> int:
    return len(rows)


@pipeline(partitions=daily(start="2026-03-01"))
def sales():
    rows = clean(extract())
    daily_sales(rows)
    store_report(rows)


@task(produces=Asset("plain.base", freshness=timedelta(hours=1)), in_process=True)
def base() -> int:
    return 2


@task(produces="plain.top", in_process=True)
def top(b: int, factor: int) -> int:
    return b * factor


@pipeline
def plain(factor: int = 1):
    top(base(), factor)


@task(in_process=True)
def fetch(token: Secret) -> int:
    return len(token)


@task(produces="guarded.table", in_process=True)
def guarded_table(n: int) -> int:
    return n


@pipeline
def guarded(token: Secret):
    guarded_table(fetch(token))
'''


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Workspace]:
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    clock = ManualClock(START)
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra), clock=clock)
    yield ws
    ws.close()


def _tick(ws: Workspace) -> None:
    # Run ids sort by their creation millisecond: each run made a moment after the last.
    clock = ws.clock
    assert isinstance(clock, ManualClock)
    clock.advance(1)


def _tasks(d: Door, run_id: str) -> dict[str, TaskRunRecord]:
    return {t.task_key: t for t in d.runs.task_runs(run_id)}


def _states(d: Door, run_id: str) -> dict[str, tuple[str, str | None]]:
    return {k: (t.state.value, t.reused_from) for k, t in _tasks(d, run_id).items()}


def _origin_notes(ws: Workspace, run_id: str) -> list[str]:
    return [e.message or "" for e in ws.store.runs.get_events(run_id) if e.kind == "origin"]


def test_first_materialization_runs_only_the_producer_and_its_upstream(ws: Workspace) -> None:
    d = door(ws)
    run = d.materialize.here("warehouse.daily_sales", partition="2026-03-05")
    assert run.state == RunState.SUCCEEDED, run.error
    assert run.origin == "materialize:warehouse.daily_sales"
    assert run.partition == "2026-03-05"
    tasks = _tasks(d, run.id)
    assert {k: t.state for k, t in tasks.items()} == {
        "extract": TaskState.SUCCEEDED,
        "clean": TaskState.SUCCEEDED,
        "daily_sales": TaskState.SUCCEEDED,
        "store_report": TaskState.SKIPPED,
    }
    assert tasks["store_report"].error == "not needed to materialize warehouse.daily_sales"
    assert all(t.reused_from is None for t in tasks.values())
    made = [(m.asset, m.partition) for m in ws.store.assets.of_run(run.id)]
    assert ("warehouse.daily_sales", "2026-03-05") in made
    assert ("reports.stores", "2026-03-05") not in made
    notes = _origin_notes(ws, run.id)
    assert notes[0] == "materialize warehouse.daily_sales: runs extract, clean, daily_sales"
    assert "reuses nothing" in notes[1]


def test_fresh_inputs_of_the_newest_alike_run_are_reused(ws: Workspace) -> None:
    d = door(ws)
    full = d.runs.run_pipeline("sales", partition="2026-03-05")
    assert full.state == RunState.SUCCEEDED
    _tick(ws)
    other = d.runs.run_pipeline("sales", partition="2026-03-06")  # another partition: no match
    _tick(ws)

    run = d.materialize.here("reports.stores", partition="2026-03-05")
    assert run.state == RunState.SUCCEEDED, run.error
    assert _states(d, run.id) == {
        "extract": ("succeeded", full.id),
        "clean": ("succeeded", full.id),
        "daily_sales": ("skipped", None),
        "store_report": ("succeeded", None),
    }
    assert other.id not in _origin_notes(ws, run.id)[1]
    assert _origin_notes(ws, run.id)[1] == f"reuses extract, clean from run {full.id}"
    # The reused tasks did not run again: only the producer made an attempt in this run.
    assert [a.task_key for a in d.runs.attempts(run.id)] == ["store_report"]
    # The reused rows say so in the run's events too.
    reused = [e.message for e in ws.store.runs.get_events(run.id) if e.task_key == "clean"]
    assert f"reused from run {full.id}" in reused

    # A materialization reuses from the newest alike run, itself made of reused rows: the
    # rows point at the run that made the results.
    _tick(ws)
    again = d.materialize.here("warehouse.daily_sales", partition="2026-03-05")
    assert _states(d, again.id)["clean"] == ("succeeded", full.id)
    assert _states(d, again.id)["daily_sales"] == ("succeeded", None)
    assert _origin_notes(ws, again.id)[1] == f"reuses extract, clean from run {full.id}"


def test_failed_or_missing_inputs_run_again_with_their_downstream(ws: Workspace) -> None:
    d = door(ws)
    first = d.materialize.here("warehouse.daily_sales", partition="2026-03-05")
    _tick(ws)
    # The cleaned orders' stored result is gone: clean runs again, extract is still reused.
    clean_row = _tasks(d, first.id)["clean"]
    assert clean_row.result_uri is not None
    Path(clean_row.result_uri).unlink()

    run = d.materialize.here("warehouse.daily_sales", partition="2026-03-05")
    assert run.state == RunState.SUCCEEDED, run.error
    assert _states(d, run.id) == {
        "extract": ("succeeded", first.id),
        "clean": ("succeeded", None),
        "daily_sales": ("succeeded", None),
        "store_report": ("skipped", None),
    }
    assert f"clean runs: its result of run {first.id} is gone" in _origin_notes(ws, run.id)


def test_other_params_or_code_reuse_nothing(ws: Workspace, tmp_path: Path) -> None:
    d = door(ws)
    d.materialize.here("plain.top", params={"factor": 2})
    _tick(ws)
    other = d.materialize.here("plain.top", params={"factor": "3"}, from_text=True)
    assert other.params == {"factor": 3}
    assert _states(d, other.id)["base"] == ("succeeded", None)  # other params
    _tick(ws)
    same = d.materialize.here("plain.top", params={"factor": 3})
    assert _states(d, same.id)["base"] == ("succeeded", other.id)
    assert d.runs.output(same.id, "top") == 6

    # New code: the results of the old code are not reused.
    module = tmp_path / "proj" / "flows.py"
    module.write_text(module.read_text().replace("return 2", "return 5"))
    _tick(ws)
    changed = d.materialize.here("plain.top", params={"factor": 3})
    assert changed.code_version != same.code_version
    assert _states(d, changed.id)["base"] == ("succeeded", None)
    assert d.runs.output(changed.id, "top") == 15


def test_a_stale_input_runs_again(ws: Workspace) -> None:
    d = door(ws)
    first = d.materialize.here("plain.top")
    clock = ws.clock
    assert isinstance(clock, ManualClock)
    clock.advance(30 * 60)
    fresh = d.materialize.here("plain.top")
    assert _states(d, fresh.id)["base"] == ("succeeded", first.id)  # 30 minutes old: fresh

    clock.advance(31 * 60)  # plain.base made 61 minutes ago, fresh within 1 hour
    stale = d.materialize.here("plain.top")
    assert _states(d, stale.id)["base"] == ("succeeded", None)
    assert "base runs: asset plain.base is stale: made 1h1m ago, fresh within 1h" in (
        _origin_notes(ws, stale.id)
    )


def test_a_made_partition_is_reused_however_old(ws: Workspace) -> None:
    # A partitioned asset's policy judges lateness after its window closed, not age.
    d = door(ws)
    first = d.materialize.here("warehouse.daily_sales", partition="2026-03-05")
    clock = ws.clock
    assert isinstance(clock, ManualClock)
    clock.advance(3 * 3600)  # warehouse.orders made 3 h ago, "fresh within 1 h"
    again = d.materialize.here("warehouse.daily_sales", partition="2026-03-05")
    assert _states(d, again.id)["clean"] == ("succeeded", first.id)
    assert _states(d, again.id)["daily_sales"] == ("succeeded", None)


def test_partitions_and_producers_are_checked(ws: Workspace) -> None:
    d = door(ws)
    with pytest.raises(ServiceError, match=r"is partitioned .*say which partition") as exc:
        d.materialize.queue("warehouse.daily_sales")
    assert exc.value.field == "partition"
    with pytest.raises(ServiceError, match="partition") as exc:
        d.materialize.queue("warehouse.daily_sales", partition="2026-13-45")
    assert exc.value.field == "partition"
    with pytest.raises(ServiceError, match=r"not ended|not yet|does not exist yet") as exc:
        d.materialize.queue("warehouse.daily_sales", partition="2026-03-20")  # in the future
    with pytest.raises(ServiceError, match="has no partitions") as exc:
        d.materialize.queue("plain.top", partition="2026-03-05")
    assert exc.value.field == "partition"
    with pytest.raises(ServiceError, match="factor") as exc:
        d.materialize.queue("plain.top", params={"factor": "many"})
    with pytest.raises(ServiceError, match=r"no producer in the project.*sales.extract") as exc:
        d.materialize.queue("shop.orders")
    assert exc.value.field == "key"
    with pytest.raises(NotFoundError, match=r"no asset 'nowhere.table'"):
        d.materialize.queue("nowhere.table")
    with pytest.raises(ServiceError, match="'plain' has no task producing"):
        d.materialize.queue("warehouse.daily_sales", pipeline="plain", partition="2026-03-05")
    assert ws.store.browse.list_runs() == []  # nothing was made

    queued = d.materialize.queue("warehouse.daily_sales", partition="2026-03-05")
    assert queued.state == RunState.QUEUED and queued.pipeline == "sales"
    assert _states(d, queued.id)["store_report"] == ("skipped", None)
    assert _states(d, queued.id)["daily_sales"] == ("pending", None)


def _client(ws: Workspace, role: str, *scope: str) -> Door:
    actor = Actor.http_client(
        f"token:{role}", permissions=ws.roles.permissions(role), role=role, auth="token",
        scope=scope,
    )  # fmt: skip
    return ws.door(actor)


def test_permission_and_scope_are_those_of_a_launch(ws: Workspace) -> None:
    with pytest.raises(Forbidden):
        _client(ws, "viewer").materialize.queue("plain.top")
    scoped = _client(ws, "operator", "sales")
    with pytest.raises(NotFoundError, match=r"no asset 'plain.top'"):
        scoped.materialize.queue("plain.top")  # a pipeline it does not see: no such asset
    run = scoped.materialize.queue("warehouse.daily_sales", partition="2026-03-05")
    assert run.origin == "materialize:warehouse.daily_sales"
    entry = ws.store.audit.entries(limit=1)[0]
    assert (entry.action, entry.target, entry.actor, entry.outcome) == (
        "runs.create", "warehouse.daily_sales", "http:token:operator", "ok",
    )


def test_secret_params_are_hidden_and_never_compared(ws: Workspace) -> None:
    d = door(ws)
    first = d.materialize.here("guarded.table", params={"token": "tok-5ecret-1"})
    assert first.state == RunState.SUCCEEDED, first.error
    _tick(ws)
    again = d.materialize.here("guarded.table", params={"token": "tok-5ecret-1"})
    assert _states(d, again.id)["fetch"] == ("succeeded", None)  # masked values: not compared
    assert "reuses nothing: it is given a secret param" in _origin_notes(ws, again.id)[1]
    assert d.runs.output(again.id, "guarded_table") == len("tok-5ecret-1")
    trail = ws.store.audit.entries(action="runs.launch")
    assert len(trail) == 2 and all("tok-5ecret" not in str(e.detail) for e in trail)
    assert "'token': '****'" in str(trail[0].detail)
