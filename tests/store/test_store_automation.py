"""The store's automation tables: schedule and trigger state, trigger events, runs finished
for triggers, the run queue, partitions, backfills and pools - on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from legato.domain.backfill_keys import BackfillKeys
from legato.domain.records import (
    BackfillRecord,
    Changes,
    DuplicateRun,
    NewTriggerEvent,
    NotFound,
    RunRecord,
    ScheduleState,
    StoreError,
    TriggerState,
)
from legato.domain.states import BackfillState, InvalidTransition, RunState
from legato.store.pool_store import PoolUsage
from legato.store.store import Store
from tests.store.store_testkit import T0, Records

MIN = timedelta(minutes=1)
_T = TypeVar("_T")


def _created(store: Store, rec: Records, pipeline: str = "etl", **fields: Any) -> RunRecord:
    run = rec.run(pipeline, **fields)
    store.runs.create_run(run, [], [])
    return run


def _leased(store: Store, rec: Records, until: datetime = T0 + 10 * MIN) -> RunRecord:
    """A run whose driver holds a lease until ``until`` (taken at T0)."""
    run = _created(store, rec)
    leased = store.runs.acquire_lease(run.id, f"driver-{run.id}", until, T0)
    assert leased is not None
    return leased


def _tev(key: str, *, trigger: str = "files", pipeline: str = "etl", **fields: Any) -> Any:
    values: dict[str, Any] = {
        "pipeline": pipeline,
        "trigger": trigger,
        "event_key": key,
        "received_at": T0,
        "status": "failed",
    }
    values.update(fields)
    return NewTriggerEvent(**values)


def _backfill(backfill_id: str, pipeline: str = "etl", **fields: Any) -> BackfillRecord:
    values: dict[str, Any] = {
        "id": backfill_id,
        "pipeline": pipeline,
        "state": BackfillState.RUNNING,
        "keys": BackfillKeys.within("2024-01-01", "2024-01-03", range(3)),
        "next_index": 0,
        "max_concurrent": 2,
        "priority": -1,
        "params": {"full": True},
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return BackfillRecord(**values)


def _all_at_once(workers: int, work: Callable[[int], _T]) -> list[_T | BaseException]:
    """Run ``work(i)`` in ``workers`` threads released together; results (or errors) by i."""
    barrier = threading.Barrier(workers)
    results: list[_T | BaseException] = [RuntimeError("did not finish")] * workers

    def body(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = work(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return results


# -- schedules -------------------------------------------------------------------------------


def test_schedule_state_is_created_on_first_set_and_keeps_its_cursor(store: Store) -> None:
    assert store.schedules.schedule_states() == {}
    first = store.schedules.set_schedule_state("etl", "daily", T0)
    assert first == ScheduleState("etl", "daily", None, False, T0)

    tick = T0 + timedelta(days=1)
    moved = store.schedules.set_schedule_state("etl", "daily", T0 + MIN, cursor=tick)
    assert (moved.cursor, moved.paused, moved.updated_at) == (tick, False, T0 + MIN)

    paused = store.schedules.set_schedule_state("etl", "daily", T0 + 2 * MIN, paused=True)
    assert (paused.cursor, paused.paused) == (tick, True)
    unpaused = store.schedules.set_schedule_state("etl", "daily", T0 + 3 * MIN, paused=False)
    assert (unpaused.cursor, unpaused.paused) == (tick, False)
    assert unpaused.cursor is not None and unpaused.cursor.tzinfo is not None

    later = tick + timedelta(days=1)
    assert (
        store.schedules.set_schedule_state("etl", "daily", T0 + 4 * MIN, cursor=later).cursor
        == later
    )
    assert store.schedules.schedule_states() == {
        ("etl", "daily"): ScheduleState("etl", "daily", later, False, T0 + 4 * MIN)
    }


def test_schedule_states_are_keyed_by_pipeline_and_name(store: Store) -> None:
    store.schedules.set_schedule_state("etl", "daily", T0, cursor=T0)
    store.schedules.set_schedule_state("report", "daily", T0, paused=True)
    store.schedules.set_schedule_state("etl", "hourly", T0, cursor=T0 + MIN, paused=True)
    states = store.schedules.schedule_states()
    assert set(states) == {("etl", "daily"), ("report", "daily"), ("etl", "hourly")}
    assert (states["etl", "daily"].cursor, states["etl", "daily"].paused) == (T0, False)
    assert (states["report", "daily"].cursor, states["report", "daily"].paused) == (None, True)
    assert (states["etl", "hourly"].cursor, states["etl", "hourly"].paused) == (T0 + MIN, True)
    # Pausing one schedule leaves the schedule of the same name in another pipeline alone.
    store.schedules.set_schedule_state("etl", "daily", T0 + MIN, paused=True)
    assert store.schedules.schedule_states()["report", "daily"].updated_at == T0


def test_schedule_state_rejects_naive_datetimes(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.schedules.set_schedule_state("etl", "daily", T0, cursor=datetime(2024, 5, 1))
    assert store.schedules.schedule_states() == {}


# -- triggers --------------------------------------------------------------------------------


def test_ensure_trigger_creates_once_and_keeps_the_first_token(store: Store) -> None:
    made = store.triggers.ensure_trigger("etl", "hook", "webhook", T0, token="s3cret")
    assert made == TriggerState("etl", "hook", "webhook", None, False, "s3cret", T0)
    again = store.triggers.ensure_trigger("etl", "hook", "webhook", T0 + MIN, token="other")
    assert again == made
    assert store.triggers.ensure_trigger("etl", "hook", "webhook", T0 + MIN).token == "s3cret"
    store.triggers.ensure_trigger("report", "hook", "sensor", T0)
    assert set(store.triggers.trigger_states()) == {("etl", "hook"), ("report", "hook")}
    assert store.triggers.trigger_states()["etl", "hook"] == made


@pytest.mark.parametrize(
    "cursor",
    [{"event_id": 5}, {"files": ["a.csv", "b.csv"], "mtime": 1.5}, 42, "offset-7", [1, 2]],
)
def test_trigger_cursor_round_trips_json(store: Store, cursor: Any) -> None:
    store.triggers.ensure_trigger("etl", "up", "run_succeeded", T0)
    got = store.triggers.set_trigger_state("etl", "up", T0 + MIN, cursor=cursor)
    assert got.cursor == cursor
    assert got.updated_at == T0 + MIN
    assert store.triggers.trigger_states()["etl", "up"].cursor == cursor


def test_trigger_pause_and_token_keep_the_cursor(store: Store) -> None:
    store.triggers.ensure_trigger("etl", "hook", "webhook", T0, token="old")
    store.triggers.set_trigger_state("etl", "hook", T0, cursor={"event_id": 5})
    paused = store.triggers.set_trigger_state("etl", "hook", T0 + MIN, paused=True)
    assert (paused.cursor, paused.paused, paused.token) == ({"event_id": 5}, True, "old")
    rotated = store.triggers.set_trigger_state("etl", "hook", T0 + 2 * MIN, token="new")
    assert (rotated.cursor, rotated.paused, rotated.token) == ({"event_id": 5}, True, "new")
    resumed = store.triggers.set_trigger_state("etl", "hook", T0 + 3 * MIN, paused=False)
    assert (resumed.cursor, resumed.paused, resumed.token) == ({"event_id": 5}, False, "new")
    assert store.triggers.trigger_states()["etl", "hook"] == resumed
    # ensure_trigger afterwards still returns the stored state, not a fresh one.
    assert (
        store.triggers.ensure_trigger("etl", "hook", "webhook", T0 + 4 * MIN, token="x") == resumed
    )


def test_unknown_trigger_is_not_found(store: Store) -> None:
    store.triggers.ensure_trigger("etl", "hook", "webhook", T0)
    with pytest.raises(NotFound, match="no trigger 'nope'"):
        store.triggers.set_trigger_state("etl", "nope", T0, paused=True)
    with pytest.raises(NotFound):
        store.triggers.set_trigger_state("report", "hook", T0, cursor={"event_id": 1})
    assert set(store.triggers.trigger_states()) == {("etl", "hook")}


# -- trigger events --------------------------------------------------------------------------


def test_record_trigger_event_once_per_key(store: Store) -> None:
    assert store.triggers.record_trigger_event(_tev("a.csv", message="bad header")) is True
    assert (
        store.triggers.record_trigger_event(_tev("a.csv", message="again", received_at=T0 + MIN))
        is False
    )
    [only] = store.triggers.trigger_events()
    assert (only.event_key, only.status, only.message, only.received_at) == (
        "a.csv",
        "failed",
        "bad header",
        T0,
    )
    # The key is scoped to the (pipeline, trigger): the same key elsewhere is new.
    assert store.triggers.record_trigger_event(_tev("a.csv", trigger="other")) is True
    assert store.triggers.record_trigger_event(_tev("a.csv", pipeline="report")) is True
    assert len(store.triggers.trigger_events()) == 3


def test_seen_event_keys(store: Store) -> None:
    for key in ("k1", "k2"):
        store.triggers.record_trigger_event(_tev(key))
    store.triggers.record_trigger_event(_tev("k3", trigger="other"))
    assert store.triggers.seen_event_keys("etl", "files", ["k1", "k3", "k4"]) == {"k1"}
    assert store.triggers.seen_event_keys("etl", "files", {"k2", "k1"}) == {"k1", "k2"}
    assert store.triggers.seen_event_keys("etl", "other", ["k1", "k3"]) == {"k3"}
    assert store.triggers.seen_event_keys("report", "files", ["k1"]) == set()
    assert store.triggers.seen_event_keys("etl", "files", []) == set()


def test_create_run_records_its_trigger_events(store: Store, rec: Records) -> None:
    run = rec.run(run_key="etl/files/k1", origin="trigger:files")
    made = _tev("k1", status="run_created", run_id=run.id, received_at=rec.clock)
    store.runs.create_run(run, [], [rec.event(run, "run_state", new_state="queued")], [made])
    assert store.runs.get_run(run.id) == run
    assert store.triggers.seen_event_keys("etl", "files", ["k1"]) == {"k1"}
    [got] = store.triggers.trigger_events()
    assert (got.event_key, got.status, got.run_id, got.received_at) == (
        "k1",
        "run_created",
        run.id,
        rec.clock,
    )

    # The same run key again: DuplicateRun, and the new event is not recorded.
    second = rec.run(run_key="etl/files/k1")
    again = _tev("k2", status="run_created", run_id=second.id)
    with pytest.raises(DuplicateRun) as caught:
        store.runs.create_run(second, [], [], [again])
    assert caught.value.existing == run
    assert store.triggers.seen_event_keys("etl", "files", ["k1", "k2"]) == {"k1"}
    assert len(store.triggers.trigger_events()) == 1
    assert [r.id for r in store.browse.list_runs()] == [run.id]


def test_create_run_with_a_seen_trigger_event_writes_nothing(store: Store, rec: Records) -> None:
    store.triggers.record_trigger_event(_tev("k1"))
    run = rec.run()  # no run key: only the trigger event's key collides
    with pytest.raises(StoreError):
        store.runs.create_run(run, [rec.task(run, "a")], [], [_tev("k1", run_id=run.id)])
    with pytest.raises(NotFound):
        store.runs.get_run(run.id)
    assert len(store.triggers.trigger_events()) == 1


def test_failed_create_run_records_no_trigger_event(store: Store, rec: Records) -> None:
    run = rec.run()
    bad_task = rec.task(run, "a", started_at=datetime(2024, 1, 1))  # naive: the insert fails
    with pytest.raises(ValueError):
        store.runs.create_run(
            run, [bad_task], [], [_tev("k1", run_id=run.id, status="run_created")]
        )
    assert store.triggers.seen_event_keys("etl", "files", ["k1"]) == set()
    assert store.triggers.trigger_events() == []


def test_trigger_events_newest_first_with_filters(store: Store) -> None:
    store.triggers.record_trigger_event(_tev("e1"))
    store.triggers.record_trigger_event(_tev("e2", trigger="hook"))
    store.triggers.record_trigger_event(_tev("e3", pipeline="report"))
    store.triggers.record_trigger_event(_tev("e4"))
    store.triggers.record_trigger_event(
        _tev("e5", trigger="hook", status="run_created", run_id="r5")
    )

    assert [e.event_key for e in store.triggers.trigger_events()] == ["e5", "e4", "e3", "e2", "e1"]
    assert [e.event_key for e in store.triggers.trigger_events(limit=2)] == ["e5", "e4"]
    assert [e.event_key for e in store.triggers.trigger_events(pipeline="etl")] == [
        "e5",
        "e4",
        "e2",
        "e1",
    ]
    assert [e.event_key for e in store.triggers.trigger_events(trigger="files")] == [
        "e4",
        "e3",
        "e1",
    ]
    both = store.triggers.trigger_events(pipeline="etl", trigger="hook", limit=1)
    assert [(e.event_key, e.run_id, e.status) for e in both] == [("e5", "r5", "run_created")]
    ids = [e.id for e in store.triggers.trigger_events()]
    assert ids == sorted(ids, reverse=True)
    failed = store.triggers.trigger_events(pipeline="etl", status="failed")
    assert [e.event_key for e in failed] == ["e4", "e2", "e1"]


# -- runs finished, for "run succeeded" triggers ----------------------------------------------


def test_runs_finished_after_follows_succeeded_run_events(store: Store, rec: Records) -> None:
    assert store.triggers.last_event_id() == 0
    assert store.triggers.runs_finished_after(0, ["etl"]) == []

    # An early run that succeeds only later, through the driver's apply.
    slow = _created(store, rec)
    assert store.runs.acquire_lease(slow.id, "d", T0 + 10 * MIN, T0)

    def finished(pipeline: str, new_state: str = "succeeded", **fields: Any) -> RunRecord:
        run = rec.run(pipeline, state=RunState(new_state), **fields)
        store.runs.create_run(
            run, [], [rec.event(run, "run_state", old_state="running", new_state=new_state)]
        )
        return run

    quick = finished("etl")
    finished("etl", "failed")
    other = finished("other")
    noise = rec.run()  # a task succeeded, not the run
    store.runs.create_run(noise, [], [rec.event(noise, task_key="a", new_state="succeeded")])
    report = finished("report")
    done = replace(slow, state=RunState.SUCCEEDED, finished_at=rec.tick())
    store.runs.apply(
        Changes(
            slow.id,
            "d",
            T0 + 10 * MIN,
            run=done,
            events=[rec.event(slow, "run_state", old_state="running", new_state="succeeded")],
        )
    )

    found = store.triggers.runs_finished_after(0, ["etl", "report"])
    # In event order, not run order: the slow run finished last.
    assert [run.id for _, run in found] == [quick.id, report.id, slow.id]
    assert found[0][1] == quick
    assert found[2][1].state is RunState.SUCCEEDED
    event_ids = [eid for eid, _ in found]
    assert event_ids == sorted(event_ids)
    assert event_ids[0] == store.runs.get_events(quick.id)[0].id
    assert event_ids[2] == store.runs.get_events(slow.id)[-1].id
    assert store.triggers.last_event_id() == event_ids[2]

    # The event id is a cursor: only later events come back.
    assert [
        r.id for _, r in store.triggers.runs_finished_after(event_ids[0], ["etl", "report"])
    ] == [
        report.id,
        slow.id,
    ]
    assert store.triggers.runs_finished_after(event_ids[2], ["etl", "report"]) == []
    assert [r.id for _, r in store.triggers.runs_finished_after(0, ["etl"])] == [quick.id, slow.id]
    assert [r.id for _, r in store.triggers.runs_finished_after(0, ["other"])] == [other.id]
    assert [r.id for _, r in store.triggers.runs_finished_after(0, ["etl", "report"], limit=1)] == [
        quick.id
    ]
    assert len(store.triggers.runs_finished_after(0, ["etl"], state="failed")) == 1
    assert store.triggers.runs_finished_after(0, []) == []
    assert store.triggers.runs_finished_after(0, ["missing"]) == []


# -- the queue -------------------------------------------------------------------------------


def test_queued_runs_by_priority_then_position(store: Store, rec: Records) -> None:
    a = _created(store, rec, priority=0, queue_position=30)
    b = _created(store, rec, priority=5, queue_position=40)
    c = _created(store, rec, priority=0, queue_position=10)
    d = _created(store, rec, priority=-2, queue_position=1)
    e = _created(store, rec, "report", priority=5, queue_position=20)
    _created(store, rec, priority=99, queue_position=0, state=RunState.RUNNING)
    _created(store, rec, priority=99, queue_position=0, state=RunState.SUCCEEDED)

    assert [r.id for r in store.queue.queued_runs()] == [e.id, b.id, c.id, a.id, d.id]
    assert [r.id for r in store.queue.queued_runs(limit=2)] == [e.id, b.id]
    assert store.queue.queued_runs()[1] == b
    # Runs that cannot start now are left out, so they do not hide the others behind a limit.
    assert [r.id for r in store.queue.queued_runs(skip_pipelines=["etl"])] == [e.id]
    f = _created(store, rec, "report", priority=9, queue_position=1, backfill_id="bf1")
    assert [r.id for r in store.queue.queued_runs(limit=2)] == [f.id, e.id]
    assert [r.id for r in store.queue.queued_runs(limit=2, skip_backfills=["bf1"])] == [e.id, b.id]


def test_running_counts(store: Store, rec: Records) -> None:
    assert store.queue.running_counts() == {}
    for pipeline, state in [
        ("etl", RunState.RUNNING),
        ("etl", RunState.RUNNING),
        ("etl", RunState.QUEUED),
        ("report", RunState.RUNNING),
        ("report", RunState.SUCCEEDED),
        ("other", RunState.FAILED),
    ]:
        _created(store, rec, pipeline, state=state)
    assert store.queue.running_counts() == {"etl": 2, "report": 1}


def test_move_in_queue_to_top_and_bottom(store: Store, rec: Records) -> None:
    high = _created(store, rec, priority=5, queue_position=300)
    mid1 = _created(store, rec, priority=0, queue_position=100)
    mid2 = _created(store, rec, priority=0, queue_position=200)
    low = _created(store, rec, priority=-3, queue_position=50)

    def order() -> list[str]:
        return [r.id for r in store.queue.queued_runs()]

    assert order() == [high.id, mid1.id, mid2.id, low.id]

    # The lowest-priority run moved to the top starts first.
    moved = store.queue.move_in_queue(low.id, to="top")
    assert order() == [low.id, high.id, mid1.id, mid2.id]
    assert moved == store.runs.get_run(low.id)
    assert moved.priority >= high.priority

    # The highest-priority run moved to the bottom starts last.
    store.queue.move_in_queue(low.id, to="bottom")
    assert order() == [high.id, mid1.id, mid2.id, low.id]
    store.queue.move_in_queue(high.id, to="bottom")
    assert order() == [mid1.id, mid2.id, low.id, high.id]

    # Within one priority too.
    store.queue.move_in_queue(mid2.id, to="top")
    assert order() == [mid2.id, mid1.id, low.id, high.id]
    store.queue.move_in_queue(mid2.id, to="bottom")
    assert order() == [mid1.id, low.id, high.id, mid2.id]

    # Already there: stays there.
    store.queue.move_in_queue(mid1.id, to="top")
    store.queue.move_in_queue(mid2.id, to="bottom")
    assert order() == [mid1.id, low.id, high.id, mid2.id]


def test_move_in_queue_ignores_runs_that_are_not_queued(store: Store, rec: Records) -> None:
    queued = _created(store, rec, priority=0, queue_position=10)
    _created(store, rec, priority=50, queue_position=0, state=RunState.RUNNING)
    _created(store, rec, priority=-50, queue_position=99, state=RunState.SUCCEEDED)
    # Nothing else is queued: the run keeps its place.
    assert store.queue.move_in_queue(queued.id, to="top") == queued
    assert store.queue.move_in_queue(queued.id, to="bottom") == queued


def test_move_in_queue_errors(store: Store, rec: Records) -> None:
    running = _created(store, rec, state=RunState.RUNNING)
    done = _created(store, rec, state=RunState.SUCCEEDED)
    queued = _created(store, rec)
    with pytest.raises(ValueError, match="not queued"):
        store.queue.move_in_queue(running.id, to="top")
    with pytest.raises(ValueError, match="not queued"):
        store.queue.move_in_queue(done.id, to="bottom")
    with pytest.raises(NotFound):
        store.queue.move_in_queue("0" * 20, to="top")
    with pytest.raises(ValueError, match="'top' or 'bottom'"):
        store.queue.move_in_queue(queued.id, to="middle")
    assert store.runs.get_run(running.id) == running
    assert store.runs.get_run(queued.id) == queued


# -- partitions ------------------------------------------------------------------------------


# -- backfills -------------------------------------------------------------------------------


def test_create_and_get_backfill_by_id_or_unique_prefix(store: Store) -> None:
    bf = _backfill("bf01aa", message="from the CLI")
    assert store.backfills.create_backfill(bf) == bf
    assert store.backfills.get_backfill("bf01aa") == bf
    other = _backfill("bf02bb")
    store.backfills.create_backfill(other)
    shorter = _backfill("bf01")  # also a prefix of bf01aa: the exact id wins
    store.backfills.create_backfill(shorter)

    assert store.backfills.get_backfill("bf02") == other
    assert store.backfills.get_backfill("bf01") == shorter
    assert store.backfills.get_backfill("bf01a") == bf
    got = store.backfills.get_backfill("bf01aa")
    assert got.state is BackfillState.RUNNING
    assert got.keys == BackfillKeys.within("2024-01-01", "2024-01-03", range(3))
    assert got.params == {"full": True}
    with pytest.raises(NotFound, match="more than one"):
        store.backfills.get_backfill("bf0")
    with pytest.raises(NotFound, match="no backfill"):
        store.backfills.get_backfill("zz")
    with pytest.raises(NotFound):
        store.backfills.get_backfill("bf_")  # LIKE wildcards are matched literally
    with pytest.raises(NotFound):
        store.backfills.get_backfill("BF02")  # ids are case-sensitive on both backends
    with pytest.raises(NotFound):
        store.backfills.get_backfill("")  # no id is not a prefix of the only backfill


def test_backfill_prefix_ignores_ids_differing_only_in_case(store: Store) -> None:
    upper = _backfill("CAFE01")
    lower = _backfill("cafe02")
    store.backfills.create_backfill(upper)
    store.backfills.create_backfill(lower)
    assert store.backfills.get_backfill("cafe") == lower
    assert store.backfills.get_backfill("CAFE") == upper
    with pytest.raises(NotFound):
        store.backfills.get_backfill("Cafe")


def test_list_backfills_newest_first_with_filters(store: Store) -> None:
    made = [
        _backfill("b1", created_at=T0, state=BackfillState.COMPLETED),
        _backfill("b2", "report", created_at=T0 + MIN),
        _backfill("b3", created_at=T0 + 2 * MIN, state=BackfillState.PAUSED),
        _backfill("b4", created_at=T0 + 3 * MIN, state=BackfillState.CANCELED),
        _backfill("b5", created_at=T0 + 4 * MIN),
    ]
    for bf in made:
        store.backfills.create_backfill(bf)

    def ids(found: list[BackfillRecord]) -> list[str]:
        return [b.id for b in found]

    assert ids(store.backfills.list_backfills()) == ["b5", "b4", "b3", "b2", "b1"]
    assert ids(store.backfills.list_backfills(limit=2)) == ["b5", "b4"]
    assert ids(store.backfills.list_backfills(active=True)) == ["b5", "b3", "b2"]
    assert ids(store.backfills.list_backfills(pipeline="etl")) == ["b5", "b4", "b3", "b1"]
    assert ids(store.backfills.list_backfills(pipeline="etl", active=True)) == ["b5", "b3"]
    assert ids(store.backfills.list_backfills(pipeline="missing")) == []
    assert store.backfills.list_backfills(pipeline="report") == [made[1]]


def test_update_backfill_state_progress_and_message(store: Store) -> None:
    store.backfills.create_backfill(_backfill("bf1"))
    step = store.backfills.update_backfill("bf1", T0 + MIN, next_index=2)
    assert (step.state, step.next_index, step.updated_at) == (BackfillState.RUNNING, 2, T0 + MIN)

    paused = store.backfills.update_backfill("bf1", T0 + 2 * MIN, state=BackfillState.PAUSED)
    assert (paused.state, paused.next_index) == (BackfillState.PAUSED, 2)
    store.backfills.update_backfill("bf1", T0 + 3 * MIN, state=BackfillState.RUNNING)
    done = store.backfills.update_backfill(
        "bf1", T0 + 4 * MIN, state=BackfillState.COMPLETED, next_index=3, message="all runs made"
    )
    assert (done.state, done.next_index, done.message, done.updated_at) == (
        BackfillState.COMPLETED,
        3,
        "all runs made",
        T0 + 4 * MIN,
    )
    assert store.backfills.get_backfill("bf1") == done
    assert done.created_at == T0

    with pytest.raises(InvalidTransition):
        store.backfills.update_backfill("bf1", T0 + 5 * MIN, state=BackfillState.RUNNING)
    with pytest.raises(InvalidTransition):
        store.backfills.update_backfill(
            "bf1", T0 + 5 * MIN, state=BackfillState.PAUSED, next_index=0
        )
    assert store.backfills.get_backfill("bf1") == done  # nothing written by the refused updates

    store.backfills.create_backfill(_backfill("bf2", state=BackfillState.PAUSED))
    canceled = store.backfills.update_backfill("bf2", T0 + MIN, state=BackfillState.CANCELED)
    assert canceled.state is BackfillState.CANCELED
    with pytest.raises(InvalidTransition):
        store.backfills.update_backfill("bf2", T0 + 2 * MIN, state=BackfillState.COMPLETED)
    with pytest.raises(NotFound):
        store.backfills.update_backfill("missing", T0, next_index=1)


def test_concurrent_backfill_finishers_cannot_both_win(store: Store) -> None:
    # Completing and canceling race: whichever commits first decides; the other must see its
    # result and be refused (completed -> canceled and canceled -> completed are not allowed).
    for round_ in range(3):
        bf_id = f"race{round_}"
        store.backfills.create_backfill(_backfill(bf_id))
        wanted = [BackfillState.COMPLETED, BackfillState.CANCELED] * 3

        def finish(i: int, bf_id: str = bf_id, wanted: list[BackfillState] = wanted) -> Any:
            return store.backfills.update_backfill(bf_id, T0 + MIN, state=wanted[i])

        results = _all_at_once(len(wanted), finish)
        unexpected = [
            r
            for r in results
            if isinstance(r, BaseException) and not isinstance(r, InvalidTransition)
        ]
        assert unexpected == []
        won = {wanted[i] for i, r in enumerate(results) if not isinstance(r, BaseException)}
        assert won == {store.backfills.get_backfill(bf_id).state}


def test_backfill_run_states_counts_its_runs(store: Store, rec: Records) -> None:
    store.backfills.create_backfill(_backfill("bf1"))
    for state in ("queued", "queued", "running", "succeeded", "failed", "failed", "failed"):
        run = _created(store, rec, state=RunState(state), backfill_id="bf1", origin="backfill:bf1")
        assert store.runs.get_run(run.id).backfill_id == "bf1"
    _created(store, rec, state=RunState.SUCCEEDED, backfill_id="bf2")
    _created(store, rec, state=RunState.SUCCEEDED)
    assert store.backfills.backfill_run_states("bf1") == {
        "queued": 2,
        "running": 1,
        "succeeded": 1,
        "failed": 3,
    }
    assert store.backfills.backfill_run_states("bf2") == {"succeeded": 1}
    assert store.backfills.backfill_run_states("missing") == {}


# -- pools -----------------------------------------------------------------------------------


def test_sync_pools_adds_changes_and_removes(store: Store, rec: Records) -> None:
    assert store.pools.pool_usage() == []
    store.pools.sync_pools({"db": 2, "gpu": 1})
    assert store.pools.pool_usage() == [PoolUsage("db", 2, ()), PoolUsage("gpu", 1, ())]

    run = _leased(store, rec)
    assert store.pools.claim_pool_slot("gpu", run.id, "train", T0)
    assert store.pools.claim_pool_slot("db", run.id, "load", T0)
    store.pools.sync_pools({"db": 3, "cpu": 4})
    assert store.pools.pool_usage() == [
        PoolUsage("cpu", 4, ()),
        PoolUsage("db", 3, ((run.id, "load"),)),
    ]
    # The removed pool's claims went with it.
    store.pools.sync_pools({"db": 3, "cpu": 4, "gpu": 1})
    assert store.pools.pool_usage()[2] == PoolUsage("gpu", 1, ())
    store.pools.sync_pools({})
    assert store.pools.pool_usage() == []


def test_claim_pool_slot_respects_the_slot_count(store: Store, rec: Records) -> None:
    store.pools.sync_pools({"db": 2})
    r1, r2, r3 = (_leased(store, rec) for _ in range(3))
    assert store.pools.claim_pool_slot("db", r1.id, "a", T0) is True
    assert store.pools.claim_pool_slot("db", r2.id, "a", T0 + MIN) is True
    assert store.pools.claim_pool_slot("db", r3.id, "a", T0 + MIN) is False
    # Idempotent for the task run that holds a slot: no second slot taken.
    assert store.pools.claim_pool_slot("db", r1.id, "a", T0 + MIN) is True
    assert store.pools.pool_usage() == [PoolUsage("db", 2, ((r1.id, "a"), (r2.id, "a")))]
    # A bigger pool lets the waiting task in.
    store.pools.sync_pools({"db": 3})
    assert store.pools.claim_pool_slot("db", r3.id, "a", T0 + MIN) is True
    assert store.pools.claim_pool_slot("db", r3.id, "b", T0 + MIN) is False  # one slot per task run


def test_claim_pool_slot_frees_slots_of_runs_without_a_live_lease(
    sqlite_store: Store, rec: Records
) -> None:
    # Exact times: on SQLite leases follow the caller's clock (PostgreSQL: test_claims.py).
    store = sqlite_store
    store.pools.sync_pools({"db": 2})
    dying = _leased(store, rec, until=T0 + MIN)
    unleased = _created(store, rec)
    live = _leased(store, rec, until=T0 + 10 * MIN)
    waiting = _leased(store, rec, until=T0 + 10 * MIN)

    assert store.pools.claim_pool_slot("db", dying.id, "a", T0)
    assert store.pools.claim_pool_slot("db", unleased.id, "a", T0)
    # The run without a lease holds nothing that counts: its slot goes to the next claimer.
    assert store.pools.claim_pool_slot("db", live.id, "a", T0)
    holders = store.pools.pool_usage()[0].holders
    assert set(holders) == {(dying.id, "a"), (live.id, "a")}
    # Exactly at expiry the lease still counts (expired means expires_at < now).
    assert store.pools.claim_pool_slot("db", waiting.id, "a", T0 + MIN) is False
    # Once it ran out, the dead driver's slot is taken over.
    assert store.pools.claim_pool_slot("db", waiting.id, "a", T0 + 2 * MIN) is True
    assert set(store.pools.pool_usage()[0].holders) == {(live.id, "a"), (waiting.id, "a")}
    # Live claims keep counting, whatever the time.
    extra = _leased(store, rec, until=T0 + 10 * MIN)
    assert store.pools.claim_pool_slot("db", extra.id, "a", T0 + 5 * MIN) is False


def test_claim_pool_slot_counts_renewed_leases(store: Store, rec: Records) -> None:
    store.pools.sync_pools({"db": 1})
    run = _leased(store, rec, until=T0 + MIN)
    assert store.pools.claim_pool_slot("db", run.id, "a", T0)
    assert store.runs.acquire_lease(run.id, f"driver-{run.id}", T0 + 10 * MIN, T0 + MIN / 2)
    other = _leased(store, rec)
    assert store.pools.claim_pool_slot("db", other.id, "a", T0 + 5 * MIN) is False
    # Released leases free the slot too.
    assert store.runs.release_lease(run.id, f"driver-{run.id}")
    assert store.pools.claim_pool_slot("db", other.id, "a", T0 + 5 * MIN) is True


def test_release_pool_slot_single_and_whole_run(store: Store, rec: Records) -> None:
    store.pools.sync_pools({"db": 3, "gpu": 2})
    r1, r2 = _leased(store, rec), _leased(store, rec)
    assert store.pools.claim_pool_slot("db", r1.id, "a", T0)
    assert store.pools.claim_pool_slot("db", r1.id, "b", T0 + MIN)
    assert store.pools.claim_pool_slot("gpu", r1.id, "c", T0)
    assert store.pools.claim_pool_slot("db", r2.id, "a", T0 + 2 * MIN)

    store.pools.release_pool_slot(r1.id, "a")
    assert store.pools.pool_usage() == [
        PoolUsage("db", 3, ((r1.id, "b"), (r2.id, "a"))),
        PoolUsage("gpu", 2, ((r1.id, "c"),)),
    ]
    store.pools.release_pool_slot(r1.id)
    assert store.pools.pool_usage() == [
        PoolUsage("db", 3, ((r2.id, "a"),)),
        PoolUsage("gpu", 2, ()),
    ]
    store.pools.release_pool_slot(r1.id, "a")  # nothing held: a no-op
    store.pools.release_pool_slot("missing")
    assert store.pools.pool_usage()[0].holders == ((r2.id, "a"),)


def test_unknown_pool_is_not_found(store: Store, rec: Records) -> None:
    store.pools.sync_pools({"db": 1})
    run = _leased(store, rec)
    with pytest.raises(NotFound, match="no pool named 'gpu'"):
        store.pools.claim_pool_slot("gpu", run.id, "a", T0)
    assert store.pools.pool_usage() == [PoolUsage("db", 1, ())]


def test_concurrent_claims_never_exceed_the_slots(store: Store, rec: Records) -> None:
    workers = 8
    runs = [_leased(store, rec) for _ in range(workers)]
    for round_ in range(3):
        pool = f"pool{round_}"
        store.pools.sync_pools({pool: 2})

        def claim(i: int, pool: str = pool) -> Any:
            return store.pools.claim_pool_slot(pool, runs[i].id, "task", T0 + MIN)

        results = _all_at_once(workers, claim)
        assert all(isinstance(r, bool) for r in results), results
        winners = {(runs[i].id, "task") for i, r in enumerate(results) if r is True}
        assert len(winners) == 2
        [usage] = store.pools.pool_usage()
        assert usage.name == pool and set(usage.holders) == winners
        for run in runs:
            store.pools.release_pool_slot(run.id)
