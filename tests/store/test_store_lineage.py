"""The lineage outbox: events written in the driver's step or not at all, claimed by one
sender at a time (taken over once its lease runs out), each run's in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from legato.domain.records import Changes, LeaseLost, NewEvent, NewLineageEvent
from legato.store.store import Store
from tests.store.store_testkit import T0, Records, leased_run

MIN = timedelta(minutes=1)


def _step(store: Store, run_id: str, owner: str, *types: str) -> None:
    at = T0 + timedelta(seconds=1)
    store.runs.apply(Changes(
        run_id, owner, at + MIN,
        events=[NewEvent(run_id, None, "lease", None, None, at)],
        lineage=[NewLineageEvent(run_id, t, {"eventType": t, "n": i}, at)
                 for i, t in enumerate(types)],
    ))


def test_events_are_written_with_the_step_or_not_at_all(store: Store, rec: Records) -> None:
    run_id = leased_run(store, rec)
    with pytest.raises(LeaseLost):
        _step(store, run_id, "thief", "START")
    assert store.lineage.events(run_id) == []
    _step(store, run_id, "driver", "START", "COMPLETE")
    got = store.lineage.events(run_id)
    assert [(e.event_type, e.state, e.body["n"]) for e in got] == [
        ("START", "pending", 0), ("COMPLETE", "pending", 1)
    ]


def test_a_claim_is_one_senders_until_its_lease_runs_out(store: Store, rec: Records) -> None:
    run_id = leased_run(store, rec)
    _step(store, run_id, "driver", "START", "COMPLETE")
    now = T0 + MIN
    first = store.lineage.claim("a", now, MIN)
    assert [e.event_type for e in first] == ["START", "COMPLETE"]
    assert store.lineage.claim("b", now, MIN) == []  # held by a
    assert not store.lineage.finish(first[0].id, "b", now)  # b holds nothing
    later = now + 2 * MIN  # a died: its lease ran out
    taken = store.lineage.claim("b", later, MIN)
    assert [e.tries for e in taken] == [2, 2]
    assert not store.lineage.finish(taken[0].id, "a", later)  # a lost it
    assert store.lineage.finish(taken[0].id, "b", later)
    assert store.lineage.finish(taken[1].id, "b", later, error="HTTP 400", retry_at=None)
    assert [(e.state, e.last_error) for e in store.lineage.events(run_id)] == [
        ("sent", None), ("failed", "HTTP 400")
    ]
    assert store.lineage.prune(later + MIN) == 2
    assert store.lineage.events(run_id) == []


def test_an_event_waiting_for_a_retry_holds_back_the_rest_of_its_run(
    store: Store, rec: Records
) -> None:
    blocked, other = leased_run(store, rec), leased_run(store, rec)
    _step(store, blocked, "driver", "START", "COMPLETE")
    _step(store, other, "driver", "START")
    now = T0 + MIN
    start, complete, free = store.lineage.claim("a", now, MIN)
    store.lineage.finish(start.id, "a", now, error="HTTP 500", retry_at=now + MIN)
    store.lineage.put_back([complete.id], "a", now + MIN)
    store.lineage.finish(free.id, "a", now)
    assert store.lineage.claim("a", now + timedelta(seconds=30), MIN) == []
    assert store.lineage.next_due() == now + MIN
    again = store.lineage.claim("a", now + MIN, MIN)
    assert [(e.run_id, e.event_type, e.tries) for e in again] == [
        (blocked, "START", 2), (blocked, "COMPLETE", 1)
    ]
