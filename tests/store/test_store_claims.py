"""Claims among several schedulers: queued runs, orphaned runs, cursors, SQLite's one seat."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from legato.domain.records import DaemonRecord
from legato.domain.states import RunState
from legato.store.store import Store
from tests.store.store_testkit import T0, Records

MIN = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _queue(store: Store, rec: Records, n: int, **fields: object) -> list[str]:
    ids = []
    for i in range(n):
        run = rec.run(queue_position=i, **fields)
        store.runs.create_run(run, [], [])
        ids.append(run.id)
    return ids


def test_claims_follow_priority_then_queue_order(store: Store, rec: Records) -> None:
    low = _queue(store, rec, 3)
    high = _queue(store, rec, 1, priority=5)
    now = _now()
    got = store.claims.claim_queued_runs("s1", now + MIN, now, limit=2)
    assert [r.id for r in got] == [high[0], low[0]]
    assert {r.lease_owner for r in got} == {"s1"}
    assert [e.kind for e in store.runs.get_events(high[0])] == ["lease"]
    # Claimed runs are nobody else's: the next claim takes the rest, in order.
    assert [r.id for r in store.claims.claim_queued_runs("s2", now + MIN, now, limit=5)] == low[1:]
    assert store.claims.claim_queued_runs("s3", now + MIN, now, limit=5) == []


def test_claims_leave_out_what_cannot_start(store: Store, rec: Records) -> None:
    mine = _queue(store, rec, 2, pipeline="etl")
    _queue(store, rec, 2, pipeline="gone")  # code this scheduler does not have
    paused = _queue(store, rec, 1, pipeline="etl", backfill_id="bf1")
    now = _now()
    got = store.claims.claim_queued_runs(
        "s1",
        now + MIN,
        now,
        limit=10,
        pipelines=["etl"],
        skip_backfills=["bf1"],
        skip_runs=[mine[1]],
    )
    assert [r.id for r in got] == [mine[0]]
    assert paused[0] not in {r.id for r in got}


def test_max_active_runs_counts_running_and_claimed_runs(store: Store, rec: Records) -> None:
    _queue(store, rec, 1, pipeline="etl", state=RunState.RUNNING)
    queued = _queue(store, rec, 4, pipeline="etl")
    other = _queue(store, rec, 2, pipeline="other")
    now = _now()
    first = store.claims.claim_queued_runs("s1", now + MIN, now, limit=10, caps={"etl": 2})
    # One running already: one more etl run may start; the other pipeline is not capped.
    assert [r.id for r in first] == [queued[0], *other]
    # The claimed (still queued) run counts too: a second scheduler finds no room.
    assert store.claims.claim_queued_runs("s2", now + MIN, now, limit=10, caps={"etl": 2}) == []
    assert store.runs.release_lease(queued[0], "s1")
    again = store.claims.claim_queued_runs("s2", now + MIN, now, limit=10, caps={"etl": 2})
    assert [r.id for r in again] == [queued[0]]


def test_concurrent_claimers_never_share_a_run(store: Store, rec: Records) -> None:
    ids = set(_queue(store, rec, 300))
    # Four claimers, each with its own connections, as four scheduler processes would be.
    stores = [Store.open(store.url) for _ in range(4)]
    got: dict[int, list[str]] = {i: [] for i in range(4)}
    start = threading.Barrier(4)

    def claim(i: int) -> None:
        start.wait()
        while True:
            now = _now()
            batch = stores[i].claims.claim_queued_runs(f"s{i}", now + MIN, now, limit=7)
            if not batch:
                return
            got[i].extend(r.id for r in batch)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    claimed = [run_id for batch in got.values() for run_id in batch]
    assert len(claimed) == len(set(claimed)) == 300
    assert set(claimed) == ids
    owners = {r.id: r.lease_owner for r in store.runs.runs_in_state(RunState.QUEUED)}
    assert all(owners[run_id] == f"s{i}" for i, batch in got.items() for run_id in batch)


def test_orphans_are_running_runs_nobody_holds(store: Store, rec: Records) -> None:
    [released] = _queue(store, rec, 1, state=RunState.RUNNING)
    [live] = _queue(store, rec, 1, state=RunState.RUNNING)
    [stale] = _queue(store, rec, 1, state=RunState.RUNNING)
    _queue(store, rec, 1)  # queued: not an orphan
    now = _now()
    assert store.runs.acquire_lease(live, "alive", now + MIN, now)
    assert store.runs.acquire_lease(stale, "dead", now + timedelta(seconds=0.2), now)
    threading.Event().wait(0.4)
    now = _now()
    got = store.claims.claim_orphans("s1", now + MIN, now, limit=10)
    assert {r.id for r in got} == {released, stale}
    assert {r.lease_owner for r in got} == {"s1"}
    assert store.claims.claim_orphans("s2", now + MIN, now, limit=10) == []


def _daemon(name: str, beat: datetime, kind: str = "scheduler") -> DaemonRecord:
    return DaemonRecord(name, kind, "host", 1, "0", None, beat, beat)


def test_one_scheduler_seat(store: Store) -> None:
    assert (
        store.claims.take_scheduler_seat(_daemon("a", T0), alive_since=T0, is_dead=lambda _: False)
        is None
    )
    later = T0 + timedelta(seconds=5)
    other = store.claims.take_scheduler_seat(
        _daemon("b", later), alive_since=later - timedelta(seconds=15), is_dead=lambda _: False
    )
    assert other is not None and other.id == "a"
    # A web server alone drives no runs: it does not hold the seat.
    store.daemons.forget_daemon("a")
    store.daemons.beat(_daemon("w", later, kind="web"))
    assert (
        store.claims.take_scheduler_seat(
            _daemon("b", later), alive_since=later - MIN, is_dead=lambda _: False
        )
        is None
    )
    # A holder known dead (its process is gone), or silent too long, gives the seat up.
    c_at = later + timedelta(seconds=1)
    assert (
        store.claims.take_scheduler_seat(
            _daemon("c", c_at), alive_since=T0, is_dead=lambda name: name == "b"
        )
        is None
    )
    d_at = c_at + MIN
    assert (
        store.claims.take_scheduler_seat(
            _daemon("d", d_at), alive_since=d_at - timedelta(seconds=15), is_dead=lambda _: False
        )
        is None
    )


def test_cursor_moves_once_from_the_value_read(store: Store) -> None:
    store.schedules.set_schedule_state("etl", "daily", T0, cursor=T0)
    moved = store.schedules.set_schedule_state(
        "etl", "daily", T0 + MIN, cursor=T0 + MIN, expect_cursor=T0
    )
    assert moved is not None and moved.cursor == T0 + MIN
    # A second scheduler that read the old cursor does not move it back.
    lost = store.schedules.set_schedule_state(
        "etl", "daily", T0 + MIN, cursor=T0 + MIN / 2, expect_cursor=T0
    )
    assert lost is None
    assert store.schedules.schedule_states()[("etl", "daily")].cursor == T0 + MIN

    store.triggers.ensure_trigger("etl", "up", "upstream", T0)
    store.triggers.ensure_trigger("etl", "up", "upstream", T0)  # a second creator finds it made
    store.triggers.set_trigger_state("etl", "up", T0, cursor={"event_id": 5, "floor": 1})
    assert store.triggers.set_trigger_state(
        "etl",
        "up",
        T0,
        cursor={"event_id": 9, "floor": 1},
        expect_cursor={"event_id": 5, "floor": 1},
    )
    assert (
        store.triggers.set_trigger_state(
            "etl",
            "up",
            T0,
            cursor={"event_id": 7, "floor": 1},
            expect_cursor={"event_id": 5, "floor": 1},
        )
        is None
    )
    assert store.triggers.trigger_states()[("etl", "up")].cursor == {"event_id": 9, "floor": 1}
