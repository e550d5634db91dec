"""The store's browsing queries, operator marks and daemon heartbeats, on both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from legato.domain.records import DaemonRecord, NotFound
from legato.domain.states import InvalidTransition, RunState, TaskState, judge_mark
from legato.store.store import Store
from tests.store.store_testkit import Records


def _finished(store: Store, rec: Records, states: dict[str, TaskState], run_state: RunState):
    run = rec.run(state=run_state, started_at=rec.tick(), finished_at=rec.tick())
    rows = [rec.task(run, key, state=s, attempt=1) for key, s in states.items()]
    store.runs.create_run(run, rows, [])
    return run


def test_filters_combine_and_pages_follow_the_filter(store: Store, rec: Records) -> None:
    made = []
    for i in range(12):
        run = rec.run(
            pipeline="etl" if i % 3 else "report",
            partition=f"2024-05-{1 + i % 4:02d}",
            state=RunState.FAILED if i % 2 else RunState.SUCCEEDED,
        )
        store.runs.create_run(run, [], [])
        made.append(run)
    want = [r.id for r in reversed(made) if r.pipeline == "etl" and r.state == RunState.FAILED]
    got: list[str] = []
    cursor = None
    while True:
        page = store.browse.list_runs(pipeline="etl", state=["failed"], limit=2, before_id=cursor)
        got += [r.id for r in page]
        if len(page) < 2:
            break
        cursor = page[-1].id
    assert got == want

    both = store.browse.list_runs(state=[RunState.FAILED, RunState.SUCCEEDED], limit=None)
    assert len(both) == 12
    assert {r.partition for r in store.browse.list_runs(partition="2024-05-02")} == {"2024-05-02"}
    middle = made[4].created_at
    after = store.browse.list_runs(created_after=middle, limit=None)
    assert [r.id for r in after] == [r.id for r in reversed(made[4:])]
    before = store.browse.list_runs(created_before=middle, limit=None)
    assert [r.id for r in before] == [r.id for r in reversed(made[:4])]


def test_recent_runs_per_pipeline_newest_first(store: Store, rec: Records) -> None:
    runs = [rec.run(pipeline=p) for p in ("a", "b", "a", "a")]
    for r in runs:
        store.runs.create_run(r, [], [])
    recent = store.browse.recent_runs(["a", "b", "c"], 2)
    assert [r.id for r in recent["a"]] == [runs[3].id, runs[2].id]
    assert [r.id for r in recent["b"]] == [runs[1].id]
    assert recent["c"] == []


def test_last_event_id_of_a_run(store: Store, rec: Records) -> None:
    run = rec.run()
    store.runs.create_run(run, [rec.task(run, "a")], [rec.event(run), rec.event(run)])
    other = rec.run()
    store.runs.create_run(other, [], [rec.event(other)])
    ids = [e.id for e in store.runs.get_events(run.id)]
    assert store.browse.run_last_event_id(run.id) == max(ids)
    assert store.browse.run_last_event_id("nope") == 0


def test_marking_a_failed_task_succeeded_makes_the_run_succeed(store: Store, rec: Records) -> None:
    run = _finished(
        store,
        rec,
        {"a": TaskState.SUCCEEDED, "b": TaskState.FAILED, "c": TaskState.SKIPPED},
        RunState.FAILED,
    )
    now = rec.tick()
    after = store.browse.mark_task(
        run.id, "b", TaskState.SUCCEEDED, now, "marked succeeded by ann", judge_mark
    )
    assert after.state == RunState.SUCCEEDED
    assert after.error is None
    assert store.runs.get_task_run(run.id, "b").state == TaskState.SUCCEEDED
    kinds = [(e.kind, e.task_key, e.old_state, e.new_state) for e in store.runs.get_events(run.id)]
    assert kinds[-2:] == [
        ("task_state", "b", "failed", "succeeded"),
        ("run_state", None, "failed", "succeeded"),
    ]
    # And back: one failed task fails the run again.
    again = store.browse.mark_task(
        run.id, "a", TaskState.FAILED, rec.tick(), "marked failed by ann", judge_mark
    )
    assert again.state == RunState.FAILED
    assert store.runs.get_task_run(run.id, "a").error == "marked failed: marked failed by ann"


def test_marks_that_do_not_fit_are_refused(store: Store, rec: Records) -> None:
    running = rec.run(state=RunState.RUNNING, started_at=rec.tick())
    store.runs.create_run(running, [rec.task(running, "a", state=TaskState.RUNNING)], [])
    with pytest.raises(InvalidTransition, match="once it has finished"):
        store.browse.mark_task(running.id, "a", TaskState.SUCCEEDED, rec.tick(), "x", judge_mark)
    done = _finished(store, rec, {"a": TaskState.SUCCEEDED}, RunState.SUCCEEDED)
    with pytest.raises(InvalidTransition, match="already"):
        store.browse.mark_task(done.id, "a", TaskState.SUCCEEDED, rec.tick(), "x", judge_mark)
    with pytest.raises(NotFound):
        store.browse.mark_task(done.id, "zzz", TaskState.FAILED, rec.tick(), "x", judge_mark)
    with pytest.raises(NotFound):
        store.browse.mark_task("nope", "a", TaskState.FAILED, rec.tick(), "x", judge_mark)
    assert store.runs.get_run(done.id).state == RunState.SUCCEEDED


def test_heartbeats_insert_update_and_forget(store: Store, rec: Records) -> None:
    t0 = rec.tick()
    d = DaemonRecord("host:1:aa", "up", "host", 1, "0.1.0", None, t0, t0)
    store.daemons.beat(d)
    store.daemons.beat(replace(d, heartbeat_at=t0 + timedelta(seconds=5), url="http://h:1"))
    store.daemons.beat(DaemonRecord("host:2:bb", "scheduler", "host", 2, "0.1.0", None, t0, t0))
    found = store.daemons.daemons()
    assert [x.id for x in found] == ["host:1:aa", "host:2:bb"]
    assert found[0].heartbeat_at == t0 + timedelta(seconds=5)
    assert found[0].url == "http://h:1"
    assert found[0].started_at == t0
    store.daemons.forget_daemon("host:1:aa")
    assert [x.id for x in store.daemons.daemons()] == ["host:2:bb"]


def test_daemons_silent_since_before_a_time_are_removed(store: Store, rec: Records) -> None:
    t0 = rec.tick()
    old = DaemonRecord("host:1:aa", "scheduler", "host", 1, "0.1.0", None, t0, t0)
    live = DaemonRecord("host:2:bb", "up", "host", 2, "0.1.0", None, t0, t0 + timedelta(minutes=5))
    store.daemons.beat(old)
    store.daemons.beat(live)
    cutoff = t0 + timedelta(minutes=1)
    assert [d.id for d in store.daemons.forget_silent_daemons(cutoff)] == ["host:1:aa"]
    assert [d.id for d in store.daemons.daemons()] == ["host:2:bb"]
    assert store.daemons.forget_silent_daemons(cutoff) == []


def test_active_counts_are_the_queued_and_running_runs_by_pipeline(
    store: Store, rec: Records
) -> None:
    # What a metrics scrape reads: finished runs, however many, are not counted.
    for pipeline, state, n in (
        ("etl", RunState.QUEUED, 3),
        ("etl", RunState.RUNNING, 1),
        ("report", RunState.RUNNING, 2),
        ("etl", RunState.SUCCEEDED, 5),
        ("report", RunState.FAILED, 4),
        ("old", RunState.CANCELED, 2),
    ):
        for _ in range(n):
            store.runs.create_run(rec.run(pipeline=pipeline, state=state), [], [])
    assert store.browse.active_counts() == {
        ("etl", "queued"): 3,
        ("etl", "running"): 1,
        ("report", "running"): 2,
    }
