"""``on_asset`` triggers on a manual clock, through real runs, once per store backend: a run
that materialized an asset starts, once it has finished, a run of each pipeline waiting for
the asset (same partition, a plain run, or the latest closed day), once, from first sight
on, not while paused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.scheduler.tick import Scheduler
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project

CODE = """
from legato import Context, pipeline, task
from legato.partitions import daily, static
from legato.triggers import on_asset


@task(produces="shop.orders", in_process=True)
def orders(ctx: Context) -> list[str]:
    return [f"order of {ctx.partition}"]


@pipeline(partitions=daily(start="2026-01-01"))
def ingest():
    orders()


@task(produces="ref.customers", in_process=True)
def customers() -> list[str]:
    return ["ada"]


@pipeline
def crm():
    customers()


@pipeline(partitions=daily(start="2026-01-01"))
def both():
    orders()
    customers()


@task(consumes=["shop.orders", "ref.customers"], in_process=True)
def use(ctx: Context) -> str | None:
    return ctx.partition


@pipeline(partitions=daily(start="2026-01-01"), triggers=[on_asset("shop.orders")])
def sales():
    use()


@pipeline(triggers=[on_asset("shop.orders", "ref.customers", name="inputs")])
def summary():
    use()


@pipeline(partitions=daily(start="2026-01-01"), triggers=[on_asset(["ref.customers"])])
def enrich():
    use()


@pipeline(partitions=static(["eu", "us"]), triggers=[on_asset("shop.orders")])
def regional():
    use()
"""

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: ManualClock,
    store_url_for: Callable[[str], str],
) -> Iterator[Workspace]:
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    with Workspace(make_project(tmp_path / "proj", CODE, extra=extra), clock=clock) as w:
        yield w


def produce(ws: Workspace, pipeline: str, partition: str | None = None) -> str:
    run = door(ws).runs.run_pipeline(pipeline, partition=partition)
    assert run.state == RunState.SUCCEEDED, run.error
    return run.id


def made(sched: Scheduler, now: datetime, pipeline: str) -> list[tuple[str | None, str]]:
    """The runs of ``pipeline`` one tick at ``now`` creates: (partition, origin)."""
    created = sched.tick(now).created
    return sorted((r.partition, r.origin or "") for r in created if r.pipeline == pipeline)


def test_a_partitioned_materialization_starts_the_same_partition_and_its_run_works(
    ws: Workspace,
) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(NOW)  # first sight: the triggers wait from now on
    producer = produce(ws, "ingest", "2026-11-19")
    result = sched.tick(NOW)
    by_pipe = {r.pipeline: r for r in result.created}
    assert sorted(by_pipe) == ["sales", "summary"]  # regional refuses the day (below)
    sales = by_pipe["sales"]
    assert (sales.partition, sales.origin) == ("2026-11-19", "trigger:asset-shop.orders")
    assert sales.run_key == f"trigger:sales:asset-shop.orders:{producer}:2026-11-19"
    assert (by_pipe["summary"].partition, by_pipe["summary"].origin) == (None, "trigger:inputs")
    # The consumer's run is a real one: it runs for the producer's partition.
    done = door(ws).runs.execute(sales.id)
    assert done.state == RunState.SUCCEEDED
    assert door(ws).runs.task_runs(sales.id)[0].state == "succeeded"
    # Ticking again makes nothing: the materialization was acted on.
    assert sched.tick(NOW).created == []


def test_each_producing_run_starts_one_run(ws: Workspace) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(NOW)
    for day in ("2026-11-17", "2026-11-18", "2026-11-19"):
        produce(ws, "ingest", day)
    produce(ws, "crm")
    result = sched.tick(NOW)
    sales = sorted(r.partition or "" for r in result.created if r.pipeline == "sales")
    assert sales == ["2026-11-17", "2026-11-18", "2026-11-19"]
    # The trigger on two assets: a plain run for each run that made either.
    assert [r.partition for r in result.created if r.pipeline == "summary"] == [None] * 4
    # A run making both assets starts one run, not one per asset.
    produce(ws, "both", "2026-11-16")
    assert made(sched, NOW, "summary") == [(None, "trigger:inputs")]


def test_a_run_still_going_starts_nothing_until_it_finishes(ws: Workspace) -> None:
    from legato.domain.materializations import NewMaterialization

    sched = Scheduler(door(ws).automation)
    sched.tick(NOW)
    going = door(ws).runs.create_run("both", partition="2026-11-19")
    # Its first task has succeeded (as a driver records it): the run is not done yet.
    ws.store.assets.record(
        [NewMaterialization("shop.orders", "2026-11-19", "both", going.id, "orders", NOW, {})]
    )
    assert made(sched, NOW, "summary") == []
    assert made(sched, NOW, "summary") == []  # still waiting, past the trigger's cursor
    assert door(ws).runs.execute(going.id).state == RunState.SUCCEEDED
    result = sched.tick(NOW)
    runs = sorted((r.pipeline, r.partition) for r in result.created)
    assert runs == [("enrich", "2026-11-19"), ("sales", "2026-11-19"), ("summary", None)]
    assert sched.tick(NOW).created == []


def test_an_asset_without_partitions_starts_the_latest_closed_day(
    ws: Workspace, clock: ManualClock
) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(NOW)
    produce(ws, "crm")  # at NOW, 2026-11-20 12:00: the day that closed last is the 19th
    assert made(sched, NOW, "enrich") == [("2026-11-19", "trigger:asset-ref.customers")]
    clock.advance(86_400)
    produce(ws, "crm")
    assert made(sched, clock(), "enrich") == [("2026-11-20", "trigger:asset-ref.customers")]


def test_materializations_from_before_first_sight_start_nothing(ws: Workspace) -> None:
    produce(ws, "ingest", "2026-11-18")
    produce(ws, "crm")
    sched = Scheduler(door(ws).automation)
    assert sched.tick(NOW).created == []
    assert sched.tick(NOW).created == []
    produce(ws, "ingest", "2026-11-19")
    assert made(sched, NOW, "sales") == [("2026-11-19", "trigger:asset-shop.orders")]


def test_a_tick_repeated_after_a_crash_makes_no_second_run(ws: Workspace) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(NOW)
    before = ws.store.triggers.trigger_states()[("sales", "asset-shop.orders")].cursor
    produce(ws, "ingest", "2026-11-19")
    assert len(made(sched, NOW, "sales")) == 1
    # The cursor put back where it was, as if the process died before writing it.
    ws.store.triggers.set_trigger_state("sales", "asset-shop.orders", NOW, cursor=before)
    assert made(sched, NOW, "sales") == []
    assert len(ws.store.browse.list_runs(pipeline="sales", limit=None)) == 1


def test_a_paused_trigger_waits_and_catches_up_when_unpaused(ws: Workspace) -> None:
    auto = door(ws).automation
    sched = Scheduler(auto)
    sched.tick(NOW)
    auto.set_trigger_paused("enrich", "asset-ref.customers", True)
    produce(ws, "crm")
    assert made(sched, NOW, "enrich") == []
    assert [r.pipeline for r in sched.tick(NOW).created] == []
    auto.set_trigger_paused("enrich", "asset-ref.customers", False)
    assert made(sched, NOW, "enrich") == [("2026-11-19", "trigger:asset-ref.customers")]


def test_a_partition_the_pipeline_does_not_have_is_a_refused_event_tried_once(
    ws: Workspace,
) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(NOW)
    produce(ws, "ingest", "2026-11-19")
    result = sched.tick(NOW)
    assert [e for e in result.errors if e.startswith("regional:")]
    assert ws.store.browse.list_runs(pipeline="regional") == []
    (refused,) = door(ws).automation.trigger_events("regional", refused_only=True)
    assert refused.trigger == "asset-shop.orders"
    assert refused.event_key.endswith(":2026-11-19")
    assert "2026-11-19" in (refused.reason or "")
    again = sched.tick(NOW)
    assert again.errors == []


def test_the_trigger_is_listed_with_its_assets(ws: Workspace) -> None:
    views = {(v.pipeline, v.name): v for v in door(ws).automation.triggers()}
    summary = views[("summary", "inputs")]
    assert summary.kind == "asset"
    assert summary.detail["assets"] == ["shop.orders", "ref.customers"]
