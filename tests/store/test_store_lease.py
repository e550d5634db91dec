"""Leases: acquire, renew, expiry, take-over, release, and which runs are resumable.

Tests with exact times run on SQLite, where leases follow the caller's clock. On PostgreSQL
they follow the server's clock; the last tests here check that, with real time.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from legato.domain.records import Changes
from legato.domain.states import RunState
from legato.store.store import Store
from tests.store.store_testkit import T0, Records, lease_expiry_ok

MIN = timedelta(minutes=1)


def _queued(store: Store, rec: Records, **fields: object) -> str:
    run = rec.run(**fields)
    store.runs.create_run(run, [], [])
    return run.id


def test_acquire_free_lease_records_owner_and_event(sqlite_store: Store, rec: Records) -> None:
    store = sqlite_store
    run_id = _queued(store, rec)
    got = store.runs.acquire_lease(run_id, "driver-a", T0 + MIN, T0)
    assert got is not None
    assert (got.lease_owner, got.lease_expires_at) == ("driver-a", T0 + MIN)
    assert store.runs.get_run(run_id) == got
    [event] = store.runs.get_events(run_id)
    assert (event.kind, event.message, event.at) == ("lease", "driver-a", T0)


def test_held_lease_refuses_others_until_it_expires(sqlite_store: Store, rec: Records) -> None:
    store = sqlite_store
    run_id = _queued(store, rec)
    assert store.runs.acquire_lease(run_id, "a", T0 + MIN, T0)
    # Still valid at T0+30s: b is refused and nothing changes.
    assert store.runs.acquire_lease(run_id, "b", T0 + 2 * MIN, T0 + MIN / 2) is None
    assert store.runs.get_run(run_id).lease_owner == "a"
    assert [e.message for e in store.runs.get_events(run_id)] == ["a"]
    # Exactly at expiry the lease still holds (expired means expires_at < now).
    assert store.runs.acquire_lease(run_id, "b", T0 + 2 * MIN, T0 + MIN) is None
    # After expiry b gets it.
    got = store.runs.acquire_lease(run_id, "b", T0 + 3 * MIN, T0 + MIN + timedelta(microseconds=1))
    assert got is not None and got.lease_owner == "b"
    assert [e.message for e in store.runs.get_events(run_id)] == ["a", "b"]


def test_owner_renews_its_own_lease(sqlite_store: Store, rec: Records) -> None:
    store = sqlite_store
    run_id = _queued(store, rec)
    assert store.runs.acquire_lease(run_id, "a", T0 + MIN, T0)
    got = store.runs.acquire_lease(run_id, "a", T0 + 5 * MIN, T0 + MIN / 2)
    assert got is not None and got.lease_expires_at == T0 + 5 * MIN


def test_take_over_from_a_proven_dead_owner(store: Store, rec: Records) -> None:
    run_id = _queued(store, rec)
    assert store.runs.acquire_lease(run_id, "a", T0 + 10 * MIN, T0)
    # Naming the wrong owner does not help.
    assert store.runs.acquire_lease(run_id, "b", T0 + MIN, T0, take_over="c") is None
    got = store.runs.acquire_lease(run_id, "b", T0 + MIN, T0, take_over="a")
    assert got is not None and got.lease_owner == "b"
    # Once b holds it, a take-over naming a (stale knowledge) fails.
    assert store.runs.acquire_lease(run_id, "c", T0 + MIN, T0, take_over="a") is None


def test_release_only_by_owner(store: Store, rec: Records) -> None:
    run_id = _queued(store, rec)
    assert store.runs.acquire_lease(run_id, "a", T0 + MIN, T0)
    assert store.runs.release_lease(run_id, "b") is False
    assert store.runs.get_run(run_id).lease_owner == "a"
    assert store.runs.release_lease(run_id, "a") is True
    run = store.runs.get_run(run_id)
    assert (run.lease_owner, run.lease_expires_at) == (None, None)
    assert store.runs.acquire_lease(run_id, "b", T0 + MIN, T0) is not None


def test_unknown_run_has_no_lease(store: Store) -> None:
    assert store.runs.acquire_lease("missing", "a", T0 + MIN, T0) is None
    assert store.runs.release_lease("missing", "a") is False


def test_resumable_runs_are_unfinished_and_unleased(sqlite_store: Store, rec: Records) -> None:
    store = sqlite_store
    queued = _queued(store, rec)
    running_free = _queued(store, rec, state=RunState.RUNNING)
    running_live = _queued(store, rec, state=RunState.RUNNING)
    running_stale = _queued(store, rec, state=RunState.RUNNING)
    _queued(store, rec, state=RunState.SUCCEEDED)
    finished_leased = _queued(store, rec, state=RunState.FAILED)
    assert store.runs.acquire_lease(running_live, "a", T0 + 10 * MIN, T0)
    assert store.runs.acquire_lease(running_stale, "b", T0 + MIN, T0)
    assert store.runs.acquire_lease(finished_leased, "c", T0 + MIN, T0)

    now = T0 + 2 * MIN
    assert [r.id for r in store.runs.resumable_runs(now)] == [queued, running_free, running_stale]
    assert [r.id for r in store.runs.resumable_runs(T0)] == [queued, running_free]
    assert [r.id for r in store.runs.runs_in_state("running")] == [
        running_free,
        running_live,
        running_stale,
    ]


def test_lease_survives_a_full_run_update(sqlite_store: Store, rec: Records) -> None:
    store = sqlite_store
    run = rec.run()
    store.runs.create_run(run, [], [])
    leased = store.runs.acquire_lease(run.id, "a", T0 + MIN, T0)
    assert leased is not None
    # A driver's stale copy of the run must not clear its own lease columns.
    store.runs.apply(Changes(run.id, "a", T0 + 2 * MIN, run=replace(run, state=RunState.RUNNING)))
    got = store.runs.get_run(run.id)
    assert (got.state, got.lease_owner, got.lease_expires_at) == (
        RunState.RUNNING,
        "a",
        T0 + 2 * MIN,
    )


# -- on every backend, in real time -----------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def test_lease_runs_out_after_its_length(store: Store, rec: Records) -> None:
    run_id = _queued(store, rec)
    now = _now()
    got = store.runs.acquire_lease(run_id, "a", now + timedelta(seconds=0.4), now)
    assert got is not None
    assert lease_expiry_ok(store, got.lease_expires_at, now + timedelta(seconds=0.4), now)
    assert store.runs.acquire_lease(run_id, "b", _now() + MIN, _now()) is None
    time.sleep(0.6)
    taken = store.runs.acquire_lease(run_id, "b", _now() + MIN, _now())
    assert taken is not None and taken.lease_owner == "b"


# -- PostgreSQL: the server's clock, whatever the callers' clocks say ------------------------


def test_a_callers_clock_far_ahead_does_not_free_a_live_lease(
    pg_store: Store, rec: Records
) -> None:
    store = pg_store
    run_id = _queued(store, rec)
    now = _now()
    assert store.runs.acquire_lease(run_id, "a", now + MIN, now)
    # A scheduler whose clock runs an hour ahead sees the lease as long expired: the store
    # does not, and keeps it for its owner.
    ahead = now + timedelta(hours=1)
    assert store.runs.acquire_lease(run_id, "b", ahead + MIN, ahead) is None
    assert store.runs.resumable_runs(ahead) == []
    assert store.claims.claim_queued_runs("b", ahead + MIN, ahead, limit=5) == []


def test_a_callers_clock_far_behind_takes_a_lease_for_its_length_only(
    pg_store: Store, rec: Records
) -> None:
    store = pg_store
    run_id = _queued(store, rec)
    behind = _now() - timedelta(hours=1)
    got = store.runs.acquire_lease(run_id, "a", behind + timedelta(seconds=0.4), behind)
    # Held for 0.4 s of the server's time, not "until an hour ago" (free at once).
    assert got is not None and got.lease_expires_at is not None
    assert got.lease_expires_at > _now() - timedelta(seconds=5)
    assert store.runs.acquire_lease(run_id, "b", behind + MIN, behind) is None
    time.sleep(0.6)
    assert store.runs.acquire_lease(run_id, "b", behind + MIN, behind) is not None


def test_lease_clock_is_the_servers(pg_store: Store) -> None:
    skewed = _now() + timedelta(hours=3)
    assert abs(pg_store.claims.lease_clock(skewed) - _now()) < timedelta(seconds=5)
