"""Record builders shared by the store tests."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from legato.domain.ids import new_run_id
from legato.domain.records import AttemptRecord, Changes, NewEvent, RunRecord, TaskRunRecord
from legato.domain.states import RunState, TaskState
from legato.store.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_T = TypeVar("_T")


@dataclass
class Records:
    """Builds records with sensible defaults; ids come from a seeded RNG and advancing time."""

    rng: random.Random
    clock: datetime = T0

    def tick(self, seconds: float = 1.0) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def run(self, pipeline: str = "etl", **fields: Any) -> RunRecord:
        created = fields.pop("created_at", None) or self.tick()
        values: dict[str, Any] = {
            "id": new_run_id(created, self.rng),
            "pipeline": pipeline,
            "state": RunState.QUEUED,
            "params": {"day": "2024-05-01"},
            "partition": None,
            "code_version": "v1",
            "created_at": created,
        }
        values.update(fields)
        return RunRecord(**values)

    def task(self, run: RunRecord | str, key: str, **fields: Any) -> TaskRunRecord:
        run_id = run if isinstance(run, str) else run.id
        mapped = re.fullmatch(r"(.+)\[(\d+)\]", key)
        values: dict[str, Any] = {
            "run_id": run_id,
            "task_key": key,
            "node": mapped.group(1) if mapped else key,
            "map_index": int(mapped.group(2)) if mapped else None,
            "state": TaskState.PENDING,
        }
        values.update(fields)
        return TaskRunRecord(**values)

    def event(self, run: RunRecord | str, kind: str = "task_state", **fields: Any) -> NewEvent:
        values: dict[str, Any] = {
            "run_id": run if isinstance(run, str) else run.id,
            "task_key": None,
            "kind": kind,
            "old_state": None,
            "new_state": None,
            "at": self.clock,
        }
        values.update(fields)
        return NewEvent(**values)


def lease_expiry_ok(
    store: Store,
    got: datetime | None,
    expires_at: datetime,
    now: datetime,
    seconds: float | None = None,
) -> bool:
    """Whether ``got`` is the expiry a lease taken with ``(expires_at, now)`` should have.

    On SQLite leases follow the caller's clock exactly. On PostgreSQL they follow the
    server's: ``expires_at - now`` (or ``seconds``, what ``Changes.lease_seconds`` says)
    from the time of the write there, a little before now.
    """
    if got is None:
        return False
    if store.backend == "sqlite":
        return got == expires_at
    ttl = timedelta(seconds=seconds) if seconds is not None else expires_at - now
    want = store.claims.lease_clock(now) + ttl
    return timedelta(0) <= want - got < timedelta(seconds=5)


def race(store: Store, count: int, work: Callable[[Store, int], _T]) -> list[_T]:
    """Run ``work(store_i, i)`` in ``count`` threads released together, each on its own
    Store over ``store``'s database (as separate processes would be); their results."""
    stores = [Store.open(store.url) for _ in range(count)]
    start = threading.Barrier(count)

    def one(i: int) -> _T:
        start.wait(timeout=30)
        return work(stores[i], i)

    try:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))
    finally:
        for opened in stores:
            opened.close()


def leased_run(store: Store, rec: Records, pipeline: str = "sales") -> str:
    """A new run of ``pipeline`` whose lease "driver" holds for a minute after T0."""
    run = rec.run(pipeline)
    store.runs.create_run(run)
    assert store.runs.acquire_lease(run.id, "driver", T0 + timedelta(minutes=1), T0)
    return run.id


def leased_with_tasks(store: Store, rec: Records, keys: tuple[str, ...] = ("a", "b")) -> RunRecord:
    """A new run with task runs ``keys``, whose lease "driver" holds for a minute after T0."""
    run = rec.run()
    store.runs.create_run(run, [rec.task(run, k) for k in keys], [])
    leased = store.runs.acquire_lease(run.id, "driver", T0 + timedelta(minutes=1), T0)
    assert leased is not None
    return leased


def typical_step(rec: Records, run: RunRecord, owner: str = "driver") -> Changes:
    """A typical step: run starts, a succeeds, b starts, a mapped element appears."""
    t = rec.tick()
    return Changes(
        run.id,
        owner,
        t + timedelta(minutes=1),
        run=replace(run, state=RunState.RUNNING, started_at=t),
        new_task_runs=[rec.task(run, "c[0]", state=TaskState.QUEUED)],
        task_runs=[
            rec.task(
                run,
                "a",
                state=TaskState.SUCCEEDED,
                attempt=1,
                started_at=t,
                finished_at=t,
                result_uri="file:///r/a",
                result_format="json",
                item_count=1,
            ),
            rec.task(run, "b", state=TaskState.RUNNING, attempt=1, started_at=t, worker="w1"),
        ],
        attempts=[AttemptRecord(run.id, "a", 1, "succeeded", t, t, log_path="/logs/a.1")],
        events=[
            rec.event(run, "run_state", old_state="queued", new_state="running"),
            rec.event(run, task_key="a", old_state="running", new_state="succeeded"),
            rec.event(run, task_key="b", old_state="queued", new_state="running"),
        ],
    )
