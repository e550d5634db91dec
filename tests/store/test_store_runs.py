"""Creating, reading, finding and listing runs; snapshots; ids and timestamps."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from legato.domain.ids import new_run_id
from legato.domain.records import Ambiguous, DuplicateRun, NotFound, StoreError
from legato.domain.states import RunState, TaskState
from legato.store.store import Store
from tests.store.store_testkit import T0, Records


def test_create_and_get_round_trips_every_field(store: Store, rec: Records) -> None:
    run = rec.run(
        params={"day": "2024-05-01", "n": 3, "nested": {"a": [1, 2.5, None, True]}},
        partition="2024-05-01",
        parent_run_id="0" * 20,
        rerun_kind="from_failure",
        error="boom",
        run_key="etl/2024-05-01",
        started_at=T0 + timedelta(seconds=5),
        environment="prod",
    )
    tasks = [rec.task(run, "extract"), rec.task(run, "load", attempt=2, worker="w1")]
    assert (
        store.runs.create_run(run, tasks, [rec.event(run, "run_state", new_state="queued")]) == run
    )

    assert store.runs.get_run(run.id) == run
    assert store.runs.get_task_runs(run.id) == tasks
    assert store.runs.get_task_run(run.id, "load") == tasks[1]
    [event] = store.runs.get_events(run.id)
    assert (event.kind, event.new_state, event.at) == ("run_state", "queued", rec.clock)


def test_unknown_ids_raise_not_found(store: Store, rec: Records) -> None:
    with pytest.raises(NotFound):
        store.runs.get_run("nope")
    run = rec.run()
    store.runs.create_run(run, [rec.task(run, "a")], [])
    with pytest.raises(NotFound, match="no task 'b'"):
        store.runs.get_task_run(run.id, "b")


def test_timestamps_come_back_aware_utc_whatever_zone_went_in(store: Store, rec: Records) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    run = rec.run(created_at=created)
    store.runs.create_run(run, [], [])
    got = store.runs.get_run(run.id).created_at
    assert got == created
    assert got.tzinfo is UTC
    assert got.hour == 12 and got.microsecond == 123456


def test_naive_datetimes_are_rejected_and_nothing_is_written(store: Store, rec: Records) -> None:
    run = rec.run(created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    naive = replace(run, started_at=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(Exception, match="naive datetime"):
        store.runs.create_run(naive, [], [])
    with pytest.raises(NotFound):
        store.runs.get_run(run.id)


def test_create_run_is_atomic(store: Store, rec: Records) -> None:
    run = rec.run()
    bad_task = rec.task(run, "b", started_at=datetime(2024, 1, 1))  # naive: fails mid-way
    with pytest.raises(ValueError):
        store.runs.create_run(run, [rec.task(run, "a"), bad_task], [])
    with pytest.raises(NotFound):
        store.runs.get_run(run.id)
    assert store.browse.list_runs() == []


def test_records_of_another_run_are_refused(store: Store, rec: Records) -> None:
    run = rec.run()
    with pytest.raises(ValueError, match="task run of run other"):
        store.runs.create_run(run, [rec.task("other", "a")], [])


def test_duplicate_run_key_returns_existing_and_writes_nothing(store: Store, rec: Records) -> None:
    first = rec.run(run_key="daily/2024-05-01")
    store.runs.create_run(first, [rec.task(first, "a")], [rec.event(first)])
    second = rec.run(run_key="daily/2024-05-01")
    with pytest.raises(DuplicateRun) as caught:
        store.runs.create_run(second, [rec.task(second, "a")], [rec.event(second)])
    assert caught.value.existing == first
    assert [r.id for r in store.browse.list_runs()] == [first.id]
    assert store.runs.get_task_runs(second.id) == []
    # Runs without a key never collide.
    store.runs.create_run(rec.run(), [], [])
    store.runs.create_run(rec.run(), [], [])
    assert len(store.browse.list_runs()) == 3


def test_reusing_a_run_id_is_a_store_error(store: Store, rec: Records) -> None:
    run = rec.run()
    store.runs.create_run(run, [], [])
    with pytest.raises(StoreError, match=f"cannot create run {run.id}"):
        store.runs.create_run(replace(run, pipeline="other"), [], [])


def test_find_run_by_exact_id_or_unique_prefix(store: Store, rec: Records) -> None:
    a = rec.run(id="abc123")
    b = rec.run(id="abd456")
    c = rec.run(id="abd4")  # also a prefix of b: exact match wins
    for run in (a, b, c):
        store.runs.create_run(run, [], [])
    assert store.runs.find_run("abc") == a
    assert store.runs.find_run("abd4") == c
    assert store.runs.find_run("abd45") == b
    assert store.runs.find_run("  abc123 ") == a


def test_find_run_reports_ambiguity_and_absence(store: Store, rec: Records) -> None:
    a = rec.run(id="abc123")
    b = rec.run(id="abd456", pipeline="other")
    store.runs.create_run(a, [], [])
    store.runs.create_run(b, [], [])
    with pytest.raises(Ambiguous) as caught:
        store.runs.find_run("ab")
    message = str(caught.value)
    assert "abc123" in message and "abd456" in message and "other" in message
    with pytest.raises(NotFound, match="'xyz'"):
        store.runs.find_run("xyz")
    with pytest.raises(NotFound):
        store.runs.find_run("ABC")  # ids are case-sensitive on both backends
    with pytest.raises(NotFound):
        store.runs.find_run("a%")  # LIKE wildcards are matched literally
    with pytest.raises(NotFound):
        store.runs.find_run("")


def test_list_runs_newest_first_with_filters_and_pages(store: Store, rec: Records) -> None:
    made = []
    for i in range(7):
        run = rec.run(pipeline="etl" if i % 2 == 0 else "report")
        if i == 3:
            run = replace(run, state=RunState.FAILED)
        store.runs.create_run(run, [], [])
        made.append(run)
    newest_first = [r.id for r in reversed(made)]

    assert [r.id for r in store.browse.list_runs()] == newest_first
    page1 = store.browse.list_runs(limit=3)
    page2 = store.browse.list_runs(limit=3, before_id=page1[-1].id)
    page3 = store.browse.list_runs(limit=3, before_id=page2[-1].id)
    assert [r.id for r in page1 + page2 + page3] == newest_first
    assert len(page3) == 1

    assert [r.pipeline for r in store.browse.list_runs(pipeline="report")] == ["report"] * 3
    assert [r.id for r in store.browse.list_runs(state=RunState.FAILED)] == [made[3].id]
    assert [r.id for r in store.browse.list_runs(state="failed", pipeline="etl")] == []
    assert [r.id for r in store.runs.runs_in_state(RunState.QUEUED, limit=2)] == [
        made[0].id,
        made[1].id,
    ]


def test_pipelines_summary(store: Store, rec: Records) -> None:
    assert store.browse.pipelines_summary() == []
    runs = [rec.run(pipeline=p) for p in ("b", "a", "b", "b")]
    for run in runs:
        store.runs.create_run(run, [], [])
    summary = store.browse.pipelines_summary()
    assert [(s.pipeline, s.run_count, s.last_run) for s in summary] == [
        ("a", 1, runs[1]),
        ("b", 3, runs[3]),
    ]
    name, count, last = summary[0]  # also a plain tuple
    assert (name, count, last.id) == ("a", 1, runs[1].id)


def test_task_runs_order_plain_then_mapped_by_index(store: Store, rec: Records) -> None:
    run = rec.run()
    keys = ["fetch[10]", "load", "fetch", "fetch[2]", "extract", "fetch[0]"]
    store.runs.create_run(run, [rec.task(run, k) for k in keys], [])
    assert [t.task_key for t in store.runs.get_task_runs(run.id)] == [
        "extract",
        "fetch",
        "load",
        "fetch[0]",
        "fetch[2]",
        "fetch[10]",
    ]


def test_snapshots_are_saved_once_per_code_version(store: Store) -> None:
    snap = {"nodes": [{"id": "a", "deps": []}], "name": "etl ünïcode"}
    assert store.runs.get_snapshot("etl", "v1") is None
    assert store.runs.save_snapshot("etl", "v1", snap, T0) is True
    assert store.runs.save_snapshot("etl", "v1", {"other": True}, T0) is False
    assert store.runs.get_snapshot("etl", "v1") == snap
    assert store.runs.get_snapshot("etl", "v2") is None


def test_non_json_params_fail_clearly(store: Store, rec: Records) -> None:
    with pytest.raises(TypeError, match=r"cannot store datetime value .* as JSON"):
        store.runs.create_run(rec.run(params={"when": T0}), [], [])
    with pytest.raises(TypeError, match="cannot store set value"):
        store.runs.save_snapshot("etl", "v1", {"s": {1, 2}}, T0)


def test_new_run_id_sorts_by_time() -> None:
    rng = random.Random(0)
    times = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 2, 1000, 86_400_000)]
    ids = [new_run_id(t, rng) for t in times]
    assert all(len(i) == 20 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert ids == sorted(ids)
    assert ids[0][:12] == f"{int(T0.timestamp() * 1000):012x}"
    assert new_run_id(T0, random.Random(5)) == new_run_id(T0, random.Random(5))
    assert new_run_id(T0) != new_run_id(T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        new_run_id(datetime(2024, 1, 1))


def test_health_calls(store: Store) -> None:
    store.ping()
    store.check_writable()
    assert store.backend in ("sqlite", "postgresql")
    assert store.url.startswith(store.backend)
    reopened = Store.open(store.url, migrate=False)
    try:
        reopened.ping()
    finally:
        reopened.close()


def test_tasks_keep_state_enum_types(store: Store, rec: Records) -> None:
    run = rec.run()
    store.runs.create_run(run, [rec.task(run, "a", state=TaskState.UP_FOR_RETRY)], [])
    got = store.runs.get_task_runs(run.id)[0]
    assert got.state is TaskState.UP_FOR_RETRY
    assert store.runs.get_run(run.id).state is RunState.QUEUED


def test_events_of_one_kind_keep_their_order_and_skip_the_others(
    store: Store, rec: Records
) -> None:
    run = rec.run()
    made = [rec.event(run, "run_state", new_state="queued")]
    made += [rec.event(run, "log" if i % 3 == 0 else "task_state", task_key=f"t{i}",
                       message=f"attempt 1: cut {i}") for i in range(9)]
    store.runs.create_run(run, [rec.task(run, f"t{i}") for i in range(9)], made)
    logs = store.runs.get_events(run.id, kind="log")
    assert [(e.kind, e.task_key) for e in logs] == [("log", "t0"), ("log", "t3"), ("log", "t6")]
    after = store.runs.get_events(run.id, after_id=logs[0].id, kind="log")
    assert [e.task_key for e in after] == ["t3", "t6"]
    assert len(store.runs.get_events(run.id)) == 10
