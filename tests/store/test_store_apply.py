"""Store.apply: one atomic, lease-guarded write per driver step; cancel requests; events."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from legato.domain.records import (
    Changes,
    LeaseLost,
    NewElements,
    StoreError,
)
from legato.domain.states import RunState, TaskState
from legato.store.store import Store
from tests.store.store_testkit import (
    T0,
    Records,
    lease_expiry_ok,
    leased_with_tasks,
    typical_step,
)

MIN = timedelta(minutes=1)


def _snapshot(store: Store, run_id: str) -> tuple[object, ...]:
    return (
        store.runs.get_run(run_id),
        store.runs.get_task_runs(run_id),
        store.runs.get_attempts(run_id),
        store.runs.get_events(run_id),
    )


def test_apply_writes_everything(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    changes = typical_step(rec, run)
    store.runs.apply(changes)

    got = store.runs.get_run(run.id)
    assert got.state is RunState.RUNNING and got.started_at == rec.clock
    assert lease_expiry_ok(
        store, got.lease_expires_at, changes.lease_expires_at, rec.clock, changes.lease_seconds
    )
    assert got.lease_owner == "driver"
    assert store.runs.get_task_runs(run.id) == [*changes.task_runs, *changes.new_task_runs]
    assert store.runs.get_attempts(run.id) == changes.attempts
    assert store.runs.get_attempts(run.id, "b") == []
    assert store.runs.get_attempts(run.id, task_keys=["a", "b"]) == changes.attempts
    assert store.runs.get_attempts(run.id, task_keys=["b", "zz"]) == []
    events = store.runs.get_events(run.id)
    assert [(e.kind, e.task_key, e.new_state) for e in events] == [
        ("lease", None, None),
        ("run_state", None, "running"),
        ("task_state", "a", "succeeded"),
        ("task_state", "b", "running"),
    ]


def test_wrong_owner_raises_lease_lost_and_writes_nothing(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    before = _snapshot(store, run.id)
    with pytest.raises(LeaseLost, match="held by driver"):
        store.runs.apply(typical_step(rec, run, owner="intruder"))
    assert _snapshot(store, run.id) == before


def test_expired_but_untaken_lease_still_lets_owner_write(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    rec.tick(3600)  # long past the lease; nobody took it over
    changes = typical_step(rec, run)
    store.runs.apply(changes)
    got = store.runs.get_run(run.id).lease_expires_at
    assert lease_expiry_ok(store, got, rec.clock + MIN, rec.clock, changes.lease_seconds)


def test_lease_taken_over_stops_old_driver(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    assert store.runs.acquire_lease(run.id, "new", T0 + 10 * MIN, T0 + 2 * MIN, take_over="driver")
    before = _snapshot(store, run.id)
    with pytest.raises(LeaseLost):
        store.runs.apply(Changes(run.id, "driver", T0 + 5 * MIN))  # even a bare heartbeat
    assert _snapshot(store, run.id) == before


def test_failure_midway_rolls_back_everything(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    before = _snapshot(store, run.id)
    changes = typical_step(rec, run)
    changes.attempts.append(changes.attempts[0])  # duplicate primary key: fails last-but-one
    with pytest.raises(IntegrityError):
        store.runs.apply(changes)
    assert _snapshot(store, run.id) == before


def test_updating_a_missing_task_run_fails(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    before = _snapshot(store, run.id)
    changes = Changes(run.id, "driver", T0 + MIN, task_runs=[rec.task(run, "ghost")])
    with pytest.raises(StoreError, match="ghost"):
        store.runs.apply(changes)
    assert _snapshot(store, run.id) == before


def test_heartbeat_only_extends_lease(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    changes = Changes(run.id, "driver", T0 + 7 * MIN)
    assert changes.empty()
    store.runs.apply(changes)
    got = store.runs.get_run(run.id)
    assert replace(got, lease_expires_at=None) == replace(run, lease_expires_at=None)
    assert lease_expiry_ok(store, got.lease_expires_at, T0 + 7 * MIN, T0, changes.lease_seconds)


def test_apply_refuses_records_of_other_runs(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    with pytest.raises(ValueError):
        store.runs.apply(Changes(run.id, "driver", T0 + MIN, events=[rec.event("other")]))
    with pytest.raises(ValueError):
        store.runs.apply(Changes(run.id, "driver", T0 + MIN, run=replace(run, id="other")))


def test_cancel_request_survives_a_stale_run_update(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    asked = store.runs.request_cancel(run.id, T0 + MIN)
    assert asked.cancel_requested
    assert store.runs.get_run(run.id).cancel_requested
    # The driver still holds its pre-cancel copy; writing it must not undo the request.
    store.runs.apply(Changes(run.id, "driver", T0 + MIN, run=replace(run, state=RunState.RUNNING)))
    assert store.runs.get_run(run.id).cancel_requested
    kinds = [e.kind for e in store.runs.get_events(run.id)]
    assert kinds == ["lease", "cancel_requested"]
    # Asking again, or asking a finished run, adds nothing.
    store.runs.request_cancel(run.id, T0 + 2 * MIN)
    done = rec.run(state=RunState.SUCCEEDED)
    store.runs.create_run(done, [], [])
    assert not store.runs.request_cancel(done.id, T0).cancel_requested
    assert [e.kind for e in store.runs.get_events(run.id)] == kinds
    assert store.runs.get_events(done.id) == []


def test_events_are_append_only_and_paged_by_id(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    other = leased_with_tasks(store, rec)
    for i in range(5):
        for r in (run, other):
            ev = rec.event(r, "note", message=f"{r.id[-4:]}-{i}")
            store.runs.apply(Changes(r.id, "driver", T0 + MIN, events=[ev]))
    events = store.runs.get_events(run.id)
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [e.message for e in events[1:]] == [f"{run.id[-4:]}-{i}" for i in range(5)]
    assert all(e.run_id == run.id for e in events)
    # Paging: after_id and limit.
    assert store.runs.get_events(run.id, after_id=ids[2]) == events[3:]
    assert store.runs.get_events(run.id, after_id=ids[0], limit=2) == events[1:3]
    assert store.runs.get_events(run.id, after_id=ids[-1]) == []
    # Newer events get larger ids than everything seen before.
    store.runs.apply(Changes(run.id, "driver", T0 + MIN, events=[rec.event(run, "late")]))
    [late] = store.runs.get_events(run.id, after_id=ids[-1])
    assert late.kind == "late" and late.id > max(e.id for e in store.runs.get_events(other.id))


def test_naive_datetime_in_apply_is_rejected(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    before = _snapshot(store, run.id)
    changes = typical_step(rec, run)
    changes.events[-1] = replace(changes.events[-1], at=changes.events[-1].at.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive datetime"):
        store.runs.apply(changes)
    assert _snapshot(store, run.id) == before


def test_apply_all_writes_several_runs_steps_in_one_go(store: Store, rec: Records) -> None:
    runs = [leased_with_tasks(store, rec) for _ in range(3)]
    batch = [typical_step(rec, run) for run in runs]
    store.runs.apply_all(batch)
    for run, changes in zip(runs, batch, strict=True):
        assert store.runs.get_run(run.id).state is RunState.RUNNING
        assert store.runs.get_task_runs(run.id) == [*changes.task_runs, *changes.new_task_runs]
        assert store.runs.get_attempts(run.id) == changes.attempts
        kinds = [(e.kind, e.task_key) for e in store.runs.get_events(run.id)]
        assert kinds == [("lease", None), ("run_state", None), ("task_state", "a"),
                         ("task_state", "b")]


def test_apply_all_writes_nothing_when_one_lease_is_lost(store: Store, rec: Records) -> None:
    runs = [leased_with_tasks(store, rec) for _ in range(3)]
    before = [_snapshot(store, r.id) for r in runs]
    batch = [
        typical_step(rec, runs[0]),
        typical_step(rec, runs[1], owner="intruder"),
        typical_step(rec, runs[2]),
    ]
    with pytest.raises(LeaseLost):
        store.runs.apply_all(batch)
    assert [_snapshot(store, r.id) for r in runs] == before

def test_apply_makes_a_mapped_nodes_elements_in_bulk(store: Store, rec: Records) -> None:
    run = leased_with_tasks(store, rec)
    t = rec.tick()
    started = rec.task(run, "a", state=TaskState.RUNNING, attempt=1, started_at=t)
    changes = Changes(
        run.id,
        "driver",
        t + MIN,
        elements=[NewElements("sq", 1200, t, events_before=1), NewElements("none", 0, t, 2)],
        # One element starts in the very step that makes it.
        task_runs=[rec.task(run, "sq[7]", node="sq", map_index=7, state=TaskState.RUNNING,
                            attempt=1, started_at=t)],
        events=[
            rec.event(run, task_key="a", old_state="queued", new_state="running"),
            rec.event(run, task_key="sq[7]", old_state="queued", new_state="running"),
        ],
    )
    changes.task_runs.insert(0, started)
    store.runs.apply(changes)
    rows = {r.task_key: r for r in store.runs.get_task_runs(run.id)}
    elements = [r for r in rows.values() if r.node == "sq"]
    assert [r.map_index for r in elements] == list(range(1200))
    assert rows["sq[1199]"] == rec.task(run, "sq[1199]", node="sq", map_index=1199,
                                        state=TaskState.QUEUED)
    assert rows["sq[7]"].state is TaskState.RUNNING and rows["sq[7]"].attempt == 1
    events = [(e.task_key, e.new_state, e.at) for e in store.runs.get_events(run.id)][1:]
    # In the order the step made them: "a" started, the elements queued, one of them started.
    assert events[0] == ("a", "running", rec.clock)
    assert events[1:1201] == [(f"sq[{i}]", "queued", t) for i in range(1200)]
    assert events[1201:] == [("sq[7]", "running", rec.clock)]
