"""The scheduler tick on a manual clock: schedules, catch-up, DST, upstream success, backfills."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from legato.clock import ManualClock
from legato.domain.backfill_keys import BackfillKeys, KeySpan
from legato.domain.states import BackfillState, RunState
from legato.scheduler.tick import Scheduler
from legato.services.partition_views import KeyRange
from legato.services.service_errors import Conflict, ServiceError
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

BERLIN = ZoneInfo("Europe/Berlin")

CODE = """
from legato import pipeline, task
from legato.partitions import daily
from legato.schedules import cron
from legato.triggers import on_success


@task(in_process=True)
def work(ctx):
    return ctx.partition


@pipeline(partitions=daily(start="2026-01-01", tz="Europe/Berlin"), schedule="0 2 * * *")
def nightly():
    work()


@pipeline(schedule=cron("30 2 * * *", tz="Europe/Berlin", catchup="all"))
def all_missed():
    work()


@pipeline(schedule=cron("0 6 * * *", catchup="none"))
def none_missed():
    work()


@pipeline(partitions=daily(start="2026-01-01", tz="Europe/Berlin"),
          triggers=[on_success("nightly")])
def after_nightly():
    work()
"""


def at(text: str, tz: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(at("2026-11-20T12:00"))


@pytest.fixture
def ws(tmp_path: Path, clock: ManualClock) -> Iterator[Workspace]:
    root = make_project(tmp_path / "proj", CODE, extra='mode = "thread"\n')
    with Workspace(root, clock=clock) as w:
        yield w


def runs_of(ws: Workspace, pipeline: str) -> list[tuple[str | None, str | None]]:
    found = ws.store.browse.list_runs(pipeline=pipeline, limit=None)
    return sorted((r.partition, r.origin) for r in found)


def tick_to(sched: Scheduler, clock: ManualClock, when: datetime) -> None:
    clock._now = when  # the tick reads nothing else of the clock
    sched.tick(when)


def test_first_tick_starts_from_now_and_the_next_makes_one_run_for_the_closed_day(
    ws: Workspace, clock: ManualClock
) -> None:
    sched = Scheduler(door(ws).automation)
    result = sched.tick(clock())
    assert result.created == []
    # Due again within seconds: the upstream trigger looks for successes of other processes.
    assert result.next_at is not None and result.next_at <= clock() + timedelta(seconds=2)
    views = {v.pipeline: v for v in door(ws).automation.schedules()}
    assert views["nightly"].next_tick == at("2026-11-21T02:00")
    tick_to(sched, clock, at("2026-11-21T02:00:01"))
    assert runs_of(ws, "nightly") == [("2026-11-20", "schedule:schedule")]
    run = ws.store.browse.list_runs(pipeline="nightly")[0]
    assert run.state == RunState.QUEUED
    assert run.run_key == "schedule:nightly:schedule:2026-11-21T01:00:00Z:2026-11-20"
    # Ticking again at the same time, or a little later, makes nothing new.
    tick_to(sched, clock, at("2026-11-21T02:00:30"))
    tick_to(sched, clock, at("2026-11-21T09:00"))
    assert len(runs_of(ws, "nightly")) == 1


def test_a_crash_between_creating_the_run_and_moving_the_cursor_makes_no_second_run(
    ws: Workspace, clock: ManualClock
) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(clock())
    before = ws.store.schedules.schedule_states()[("nightly", "schedule")].cursor
    tick_to(sched, clock, at("2026-11-21T02:00:01"))
    # Put the cursor back where it was, as if the process died before writing it.
    ws.store.schedules.set_schedule_state("nightly", "schedule", clock(), cursor=before)
    again = sched.tick(clock())
    assert [r.pipeline for r in again.created if r.pipeline == "nightly"] == []
    assert len(runs_of(ws, "nightly")) == 1


def test_catch_up_all_latest_and_none_after_three_days_down(
    ws: Workspace, clock: ManualClock
) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(clock())
    tick_to(sched, clock, at("2026-11-23T12:00"))  # down since the 20th, noon
    # all: every missed 02:30 tick (21st, 22nd, 23rd).
    assert len(runs_of(ws, "all_missed")) == 3
    # latest (the default): only the newest tick, for the day that closed before it.
    assert runs_of(ws, "nightly") == [("2026-11-22", "schedule:schedule")]
    # none: missed ticks are skipped...
    assert runs_of(ws, "none_missed") == []
    # ...but a tick seen on time runs.
    tick_to(sched, clock, at("2026-11-24T06:00:10", UTC))
    assert len(runs_of(ws, "none_missed")) == 1


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("Europe/Berlin", ("2026-03-28", "2026-03-31")),  # spring forward on the 29th
        ("Europe/Berlin", ("2026-10-24", "2026-10-27")),  # fall back on the 25th
        ("America/New_York", ("2026-03-07", "2026-03-10")),
        ("America/New_York", ("2026-10-31", "2026-11-03")),
    ],
)
def test_a_daily_schedule_in_the_dst_gap_or_overlap_runs_once_a_day(
    tmp_path: Path, zone: str, days: tuple[str, str]
) -> None:
    tz = ZoneInfo(zone)
    # 02:30 does not exist on spring-forward days and 01:30 happens twice on fall-back days.
    code = f"""
from legato import pipeline, task
from legato.schedules import cron

@task(in_process=True)
def work():
    return 1

@pipeline(schedule=[cron("30 2 * * *", tz={zone!r}, catchup="all", name="gap"),
                    cron("30 1 * * *", tz={zone!r}, catchup="all", name="overlap")])
def dst():
    work()
"""
    start = at(days[0] + "T12:00", tz)
    clock = ManualClock(start)
    root = make_project(tmp_path / "dst", code)
    with Workspace(root, clock=clock) as ws:
        sched = Scheduler(door(ws).automation)
        sched.tick(start)
        t = start
        while t < at(days[1] + "T12:00", tz):  # tick every 10 minutes for three days
            t += timedelta(minutes=10)
            tick_to(sched, clock, t)
        found = ws.store.browse.list_runs(pipeline="dst", limit=None)
        by_day: dict[tuple[str | None, str], int] = {}
        for r in found:
            assert r.run_key is not None
            tick = datetime.fromisoformat(r.run_key.split(":", 3)[3].replace("Z", "+00:00"))
            key = (r.origin, tick.astimezone(tz).date().isoformat())
            by_day[key] = by_day.get(key, 0) + 1
        assert sorted(by_day.values()) == [1] * 6, by_day
        assert len(found) == 6


def test_paused_schedule_makes_no_runs_and_unpausing_skips_what_was_missed(
    ws: Workspace, clock: ManualClock
) -> None:
    auto = door(ws).automation
    sched = Scheduler(auto)
    sched.tick(clock())
    auto.set_schedule_paused("all_missed", True)
    tick_to(sched, clock, at("2026-11-22T12:00"))
    assert runs_of(ws, "all_missed") == []
    auto.set_schedule_paused("all_missed", False)
    tick_to(sched, clock, at("2026-11-22T12:01"))
    assert runs_of(ws, "all_missed") == []
    tick_to(sched, clock, at("2026-11-23T02:31"))
    assert len(runs_of(ws, "all_missed")) == 1
    views = {v.pipeline: v for v in auto.schedules()}
    assert views["all_missed"].paused is False
    assert views["all_missed"].next_tick == at("2026-11-24T02:30")


def test_upstream_success_starts_the_downstream_run_for_the_same_partition(
    ws: Workspace, clock: ManualClock
) -> None:
    sched = Scheduler(door(ws).automation)
    sched.tick(clock())  # the trigger starts listening now
    done = door(ws).runs.run_pipeline("nightly", partition="2026-11-19")
    assert done.state == RunState.SUCCEEDED
    failed_before = ws.store.browse.list_runs(pipeline="after_nightly")
    assert failed_before == []
    result = sched.tick(clock())
    made = [r for r in result.created if r.pipeline == "after_nightly"]
    assert [(r.partition, r.origin) for r in made] == [("2026-11-19", "trigger:after-nightly")]
    # The same success is not acted on twice.
    assert [r for r in sched.tick(clock()).created if r.pipeline == "after_nightly"] == []


def test_backfill_creates_runs_a_few_at_a_time_and_completes(
    ws: Workspace, clock: ManualClock
) -> None:
    auto = door(ws).automation
    sched = Scheduler(auto)
    door(ws).runs.run_pipeline("nightly", partition="2026-11-02")  # succeeded: skipped by default
    b = auto.create_backfill("nightly", first="2026-11-01", last="2026-11-05", max_concurrent=2)
    # Kept as the stretches of the range that need a run, not key by key.
    assert b.keys == BackfillKeys((
        KeySpan("2026-11-01", "2026-11-05", 0, 1), KeySpan("2026-11-01", "2026-11-05", 2, 5),
    ))
    assert auto.backfill(b.id).ranges == (
        KeyRange("2026-11-01", "2026-11-01", 1), KeyRange("2026-11-03", "2026-11-05", 3)
    )
    sched.tick(clock())
    queued = [r for r in ws.store.queue.queued_runs() if r.backfill_id == b.id]
    assert [r.partition for r in queued] == ["2026-11-01", "2026-11-03"]
    # Backfill runs queue behind the pipeline's own runs.
    fresh = door(ws).runs.create_run("nightly", partition="2026-11-19")
    assert ws.store.queue.queued_runs()[0].id == fresh.id
    sched.tick(clock())
    assert len([r for r in ws.store.queue.queued_runs() if r.backfill_id == b.id]) == 2
    while True:
        mine = [r for r in ws.store.queue.queued_runs() if r.backfill_id == b.id]
        if not mine:
            break
        for r in mine:
            door(ws).runs.execute(r.id)
        sched.tick(clock())
    view = auto.backfill(b.id)
    assert view.record.state == BackfillState.COMPLETED
    assert view.done == view.total == 4
    states = {p.key: p.state for p in auto.partitions("nightly")}
    assert states["2026-11-04"] == "succeeded"
    assert states["2026-10-30"] == "never run"


def test_backfill_errors_name_the_pipeline_and_the_problem(ws: Workspace) -> None:
    auto = door(ws).automation
    with pytest.raises(ServiceError, match=r"nightly.*before the first partition"):
        auto.create_backfill("nightly", first="2025-12-30", last="2026-01-02")
    with pytest.raises(ServiceError, match="nightly"):
        auto.create_backfill("nightly", first="2026-11-30", last="2026-12-02")
    with pytest.raises(ServiceError, match="has no partitions"):
        auto.create_backfill("all_missed", first="2026-11-01", last="2026-11-02")
    door(ws).runs.run_pipeline("nightly", partition="2026-11-10")
    with pytest.raises(Conflict, match="nothing to backfill"):
        auto.create_backfill("nightly", keys=["2026-11-10"])
    b = auto.create_backfill("nightly", keys=["2026-11-10"], all_partitions=True)
    assert b.keys == BackfillKeys.named(["2026-11-10"]) and auto.backfill(b.id).keys == (
        "2026-11-10",
    )


def test_canceling_a_backfill_cancels_its_queued_runs(ws: Workspace, clock: ManualClock) -> None:
    auto = door(ws).automation
    b = auto.create_backfill("nightly", first="2026-11-01", last="2026-11-05", max_concurrent=3)
    Scheduler(auto).tick(clock())
    view = auto.set_backfill_state(b.id, BackfillState.CANCELED)
    assert view.record.state == BackfillState.CANCELED
    assert view.runs == {"canceled": 3}
    with pytest.raises(Conflict, match="cannot go from canceled to running"):
        auto.set_backfill_state(b.id, BackfillState.RUNNING)


def test_a_queued_run_whose_code_changed_can_still_be_canceled(tmp_path: Path) -> None:
    first = """
from legato import pipeline, task

@task(in_process=True)
def work(n: int):
    return n

@pipeline
def job(n: int = 1):
    work(n)
"""
    root = make_project(tmp_path / "p", first)
    with Workspace(root) as ws:
        queued = door(ws).runs.create_run("job", {"n": 2})
    # The param is renamed and a task added: the queued run no longer fits the code.
    (root / "flows.py").write_text(
        first.replace("n: int = 1", "count: int = 1").replace("work(n)", "work(count)\n    work(0)")
    )
    with Workspace(root) as ws:
        done = door(ws).runs.cancel(queued.id)
        assert done.state == RunState.CANCELED
        states = {t.task_key: t.state for t in door(ws).runs.task_runs(queued.id)}
        assert states == {"work": "canceled"}
        assert ws.store.runs.get_run(queued.id).lease_owner is None


def test_an_upstream_success_counts_its_lag_until_the_downstream_run(
    ws: Workspace, clock: ManualClock
) -> None:
    from legato.observability import metrics

    labels = {"pipeline": "after_nightly", "trigger": "after-nightly"}

    def lagged() -> tuple[float, float]:
        sample = metrics.REGISTRY.get_sample_value
        return (
            sample("legato_trigger_event_lag_seconds_count", labels) or 0.0,
            sample("legato_trigger_event_lag_seconds_sum", labels) or 0.0,
        )

    sched = Scheduler(door(ws).automation)
    sched.tick(clock())
    done = door(ws).runs.run_pipeline("nightly", partition="2026-11-19")
    assert done.finished_at == clock()
    count, total = lagged()
    clock.advance(42)  # the tick sees the success 42 s after it finished
    sched.tick(clock())
    assert lagged() == (count + 1, pytest.approx(total + 42))
    sched.tick(clock())  # nothing new: nothing counted
    assert lagged()[0] == count + 1
