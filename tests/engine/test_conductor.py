"""Many runs driven at once by one Conductor over one real executor and a real store."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from legato.domain.ids import new_run_id
from legato.domain.records import RunRecord, TaskRunRecord
from legato.domain.states import RunState, TaskState
from legato.engine import plan
from legato.engine.conductor import Conductor
from legato.engine.driver import RunDriver
from legato.services.owner import this_owner
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

COMMON = """
import time
from legato import Context, pipeline, task

@task
def quick(x: int) -> int:
    time.sleep(0.05)
    return x + 1

@task
def split(n: int) -> list[int]:
    return list(range(n))

@task
def total(xs: list[int]) -> int:
    return sum(xs)

@pipeline
def fan(n: int = 3):
    total(quick.map(split(n)))

@task
def one() -> int:
    time.sleep(0.2)
    return 1

@task
def two() -> int:
    time.sleep(0.2)
    return 2

@pipeline
def pair():
    one()
    two()

@task(pool="db")
def load_a() -> int:
    time.sleep(0.3)
    return 1

@task(pool="db")
def load_b() -> int:
    time.sleep(0.3)
    return 2

@task
def side() -> int:
    return 3

@pipeline
def loads():
    load_a()
    load_b()
    side()

@task(pool="nope")
def lost() -> int:
    return 0

@pipeline
def unknown_pool():
    lost()

@task  # no retries: a stop of the daemon must not count as a failure
def slow(ctx: Context) -> int:
    if ctx.attempt == 1:
        time.sleep(60)
    return ctx.attempt

@pipeline
def sleepy():
    slow()

@task(retries=1, pool="db")
def slow_load(ctx: Context) -> int:
    if ctx.attempt == 1:
        time.sleep(60)
    return ctx.attempt

@pipeline
def sleepy_load():
    slow_load()

@task(retries=1)
def flaky_after_stop(ctx: Context) -> int:
    if ctx.attempt == 1:
        time.sleep(60)  # stopped under it
    if ctx.attempt == 2:
        raise RuntimeError("a real failure")
    return ctx.attempt

@pipeline
def stopped_then_flaky():
    flaky_after_stop()

@task  # no retries
def endless() -> None:
    time.sleep(60)

@pipeline
def stubborn():
    endless()
"""

OWNER = this_owner()


@pytest.fixture
def ws_factory(tmp_path: Path):
    opened: list[Workspace] = []

    def make(workers: int = 2) -> Workspace:
        # "nope" is declared, so the project loads, but the store never hears of it.
        pools = "\n[pools]\ndb = 1\nnope = 1\n"
        root = make_project(tmp_path / f"proj{len(opened)}", COMMON, workers=workers, extra=pools)
        ws = Workspace(root)
        ws.store.pools.sync_pools({"db": 1})
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


def queue_run(ws: Workspace, name: str, *, priority: int = 0, **params: object) -> RunRecord:
    """A queued run of ``name``, as the daemon finds it in the store."""
    pipe = ws.pipeline(name)
    now = ws.clock()
    run = RunRecord(
        id=new_run_id(now),
        pipeline=name,
        state=RunState.QUEUED,
        params=pipe.params_to_json(pipe.validate_params(params)),
        partition=None,
        code_version=pipe.code_version,
        created_at=now,
        priority=priority,
    )
    rows = plan.initial_task_runs(pipe, run.id)
    return ws.store.runs.create_run(run, rows, plan.creation_events(rows, now))


def driver_for(
    ws: Workspace, run: RunRecord, *, owner: str = OWNER, take_over: str | None = None, **kw: object
) -> RunDriver:
    """Take the run's lease as ``owner`` and make its driver on the workspace's executor."""
    now = ws.clock()
    expires = now + timedelta(seconds=15)
    held = ws.store.runs.acquire_lease(run.id, owner, expires, now, take_over=take_over)
    assert held is not None
    return RunDriver(
        ws.store,
        ws.pipeline(run.pipeline),
        ws.executor(),
        held,
        owner=owner,
        logs_dir=ws.config.logs_dir,
        **kw,  # type: ignore[arg-type]
    )


def drive_all(conductor: Conductor, timeout: float = 60.0) -> dict[str, RunRecord]:
    """Step until no run is left; the finished runs by id."""
    deadline = time.monotonic() + timeout
    done: dict[str, RunRecord] = {}
    while conductor.active:
        assert time.monotonic() < deadline, f"runs still active: {sorted(conductor.active)}"
        done.update((r.id, r) for r in conductor.step(1.0))
    return done


def tasks_of(ws: Workspace, run_id: str) -> dict[str, TaskRunRecord]:
    return {t.task_key: t for t in ws.store.runs.get_task_runs(run_id)}


def interval(t: TaskRunRecord) -> tuple[datetime, datetime]:
    assert t.started_at is not None and t.finished_at is not None
    return t.started_at, t.finished_at


def test_many_runs_at_once_all_succeed(ws_factory) -> None:
    ws = ws_factory(workers=2)
    conductor = Conductor(ws.executor())
    runs = [queue_run(ws, "fan", n=3) for _ in range(4)] + [queue_run(ws, "pair")]
    for run in runs:
        conductor.add(driver_for(ws, run))
    assert conductor.active == {r.id for r in runs}
    done = drive_all(conductor)
    assert set(done) == {r.id for r in runs}
    for run in runs:
        assert done[run.id].state == RunState.SUCCEEDED
        assert ws.store.runs.get_run(run.id).state == RunState.SUCCEEDED
        assert all(t.state == TaskState.SUCCEEDED for t in tasks_of(ws, run.id).values())
    # The runs shared the workers: attempts of different runs were running at once.
    spans = [
        (interval(t), run.id)
        for run in runs
        for t in tasks_of(ws, run.id).values()
        if t.map_index is not None or t.node in ("one", "two")
    ]
    assert any(
        a[1] != b[1] and a[0][0] < b[0][1] and b[0][0] < a[0][1]
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
    )


def test_higher_priority_run_takes_the_free_worker_first(ws_factory) -> None:
    ws = ws_factory(workers=1)
    conductor = Conductor(ws.executor())
    low = queue_run(ws, "pair", priority=0)
    high = queue_run(ws, "pair", priority=5)
    conductor.add(driver_for(ws, low))  # added first, queued first: still goes second
    conductor.add(driver_for(ws, high))
    assert [d.run_id for d in conductor.drivers] == [high.id, low.id]
    done = drive_all(conductor)
    assert done[high.id].state == done[low.id].state == RunState.SUCCEEDED
    high_spans = [interval(t) for t in tasks_of(ws, high.id).values()]
    low_spans = [interval(t) for t in tasks_of(ws, low.id).values()]
    assert max(s for s, _ in high_spans) < min(s for s, _ in low_spans)
    assert max(f for _, f in high_spans) <= min(s for s, _ in low_spans)


def test_pool_slot_is_shared_across_runs(ws_factory) -> None:
    ws = ws_factory(workers=4)
    conductor = Conductor(ws.executor())
    runs = [queue_run(ws, "loads"), queue_run(ws, "loads")]
    for run in runs:
        conductor.add(driver_for(ws, run))
    done = drive_all(conductor)
    assert all(done[r.id].state == RunState.SUCCEEDED for r in runs)
    pooled = sorted(
        interval(t)
        for r in runs
        for t in tasks_of(ws, r.id).values()
        if t.node in ("load_a", "load_b")
    )
    assert len(pooled) == 4
    for (_, end), (start, _) in itertools.pairwise(pooled):
        assert end <= start, "two attempts held the pool's single slot at once"
    for r in runs:
        tasks = tasks_of(ws, r.id)
        # A task waiting for the pool did not keep the run's other task from a worker.
        waiting = max(tasks["load_a"].started_at, tasks["load_b"].started_at)  # type: ignore[type-var]
        assert tasks["side"].started_at is not None and tasks["side"].started_at < waiting
    assert ws.store.pools.pool_usage()[0].holders == ()
    kinds = {e.kind for r in runs for e in ws.store.runs.get_events(r.id)}
    assert "pool" in kinds  # "waiting for a slot of pool 'db'"


def test_pool_slot_held_by_another_process_blocks_until_released(ws_factory) -> None:
    ws = ws_factory(workers=2)
    # Another driver, elsewhere, holds the only slot for a run whose lease is live.
    other = queue_run(ws, "loads")
    now = ws.clock()
    assert ws.store.runs.acquire_lease(
        other.id, "elsewhere:1:1:abc", now + timedelta(minutes=5), now
    )
    assert ws.store.pools.claim_pool_slot("db", other.id, "load_a", now)

    run = queue_run(ws, "loads")
    conductor = Conductor(ws.executor())
    conductor.add(driver_for(ws, run, pool_poll=0.1))
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        conductor.step(0.2)
    tasks = tasks_of(ws, run.id)
    assert tasks["side"].state == TaskState.SUCCEEDED
    assert tasks["load_a"].state == tasks["load_b"].state == TaskState.QUEUED
    assert tasks["load_a"].attempt == tasks["load_b"].attempt == 0

    released = ws.clock()
    ws.store.pools.release_pool_slot(other.id)
    done = drive_all(conductor)
    assert done[run.id].state == RunState.SUCCEEDED
    tasks = tasks_of(ws, run.id)
    for key in ("load_a", "load_b"):
        assert tasks[key].state == TaskState.SUCCEEDED
        assert tasks[key].started_at is not None and tasks[key].started_at >= released


def test_unknown_pool_fails_the_task_not_the_driver(ws_factory) -> None:
    ws = ws_factory()
    conductor = Conductor(ws.executor())
    bad = queue_run(ws, "unknown_pool")
    good = queue_run(ws, "pair")
    conductor.add(driver_for(ws, bad))
    conductor.add(driver_for(ws, good))
    done = drive_all(conductor)
    assert done[bad.id].state == RunState.FAILED
    assert done[good.id].state == RunState.SUCCEEDED
    lost = tasks_of(ws, bad.id)["lost"]
    assert lost.state == TaskState.FAILED
    assert "pool 'nope' does not exist" in (lost.error or "")


def test_single_driver_respects_pools_too(ws_factory) -> None:
    ws = ws_factory(workers=3)
    finished = door(ws).runs.execute(queue_run(ws, "loads").id)
    assert finished.state == RunState.SUCCEEDED
    tasks = tasks_of(ws, finished.id)
    a, b = sorted([interval(tasks["load_a"]), interval(tasks["load_b"])])
    assert a[1] <= b[0]


def test_wake_from_another_thread_ends_a_blocked_step(ws_factory) -> None:
    ws = ws_factory()
    conductor = Conductor(ws.executor())
    # Nothing to drive: the step sleeps in the executor until woken.
    threading.Timer(0.2, conductor.wake).start()
    t0 = time.monotonic()
    assert conductor.step(30.0) == []
    assert time.monotonic() - t0 < 1.0

    # A run with a long attempt and nothing else to do for minutes.
    run = queue_run(ws, "sleepy")
    conductor.add(driver_for(ws, run, lease_ttl=600.0, cancel_poll=600.0))
    conductor.step(0.0)  # starts the attempt
    assert tasks_of(ws, run.id)["slow"].state == TaskState.RUNNING
    threading.Timer(0.2, conductor.wake).start()
    t0 = time.monotonic()
    conductor.step(30.0)
    assert time.monotonic() - t0 < 1.0

    # A wake-up that comes before the step ends the next step's wait at once, and only it.
    conductor.wake()
    t0 = time.monotonic()
    conductor.step(30.0)
    assert time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    conductor.step(0.3)
    assert time.monotonic() - t0 >= 0.25
    conductor.shutdown()


def test_driver_that_loses_its_lease_is_dropped(ws_factory, caplog) -> None:
    ws = ws_factory(workers=2)
    conductor = Conductor(ws.executor())
    lost = queue_run(ws, "pair")
    kept = [queue_run(ws, "fan", n=4), queue_run(ws, "fan", n=4)]
    for run in [lost, *kept]:
        conductor.add(driver_for(ws, run))
    conductor.step(0.0)
    assert tasks_of(ws, lost.id)["one"].state == TaskState.RUNNING
    # Another process takes the run over (it found this owner dead, say).
    now = ws.clock()
    thief = "elsewhere:2:2:def"
    assert ws.store.runs.acquire_lease(
        lost.id, thief, now + timedelta(minutes=5), now, take_over=OWNER
    )
    with caplog.at_level(logging.ERROR, logger="legato.engine"):
        done = drive_all(conductor)
    assert lost.id not in done and lost.id not in conductor.active
    assert all(done[r.id].state == RunState.SUCCEEDED for r in kept)
    stored = ws.store.runs.get_run(lost.id)
    assert stored.state == RunState.RUNNING and stored.lease_owner == thief
    assert any(
        lost.id in r.getMessage() and "lost the lease" in r.getMessage() for r in caplog.records
    )


def test_shutdown_leaves_runs_resumable(ws_factory) -> None:
    ws = ws_factory()
    conductor = Conductor(ws.executor())
    run = queue_run(ws, "sleepy")
    conductor.add(driver_for(ws, run))
    conductor.step(0.0)
    assert tasks_of(ws, run.id)["slow"].state == TaskState.RUNNING
    conductor.shutdown()
    assert not conductor.active
    assert tasks_of(ws, run.id)["slow"].state == TaskState.UP_FOR_RETRY
    stored = ws.store.runs.get_run(run.id)
    assert stored.state == RunState.RUNNING and stored.lease_owner is None
    assert run.id in {r.id for r in ws.store.runs.resumable_runs(ws.clock())}

    # A restarted daemon carries on: the killed attempt is interrupted and runs again.
    again = Conductor(ws.executor())
    again.add(driver_for(ws, stored))
    done = drive_all(again)
    assert done[run.id].state == RunState.SUCCEEDED
    assert [a.outcome for a in ws.store.runs.get_attempts(run.id, "slow")] == [
        "interrupted",
        "succeeded",
    ]


def test_resumed_run_gives_back_stale_slots_and_claims_again(ws_factory) -> None:
    ws = ws_factory()
    first = Conductor(ws.executor())
    run = queue_run(ws, "sleepy_load")
    driver = driver_for(ws, run)
    first.add(driver)
    first.step(0.0)
    assert ws.store.pools.pool_usage()[0].holders == ((run.id, "slow_load"),)
    # The driver dies: its attempt is gone, its claim is still in the store.
    driver.abandon("interrupted: test")
    assert ws.store.pools.pool_usage()[0].holders == ((run.id, "slow_load"),)

    other = this_owner()
    again = Conductor(ws.executor())
    again.add(driver_for(ws, ws.store.runs.get_run(run.id), owner=other, take_over=OWNER))
    assert ws.store.pools.pool_usage()[0].holders == ()  # none of the run's attempts runs now
    done = drive_all(again)
    assert done[run.id].state == RunState.SUCCEEDED
    assert [a.outcome for a in ws.store.runs.get_attempts(run.id, "slow_load")] == [
        "interrupted",
        "succeeded",
    ]
    assert ws.store.pools.pool_usage()[0].holders == ()


def test_cancel_all_ends_every_run(ws_factory) -> None:
    ws = ws_factory()
    conductor = Conductor(ws.executor())
    runs = [queue_run(ws, "sleepy"), queue_run(ws, "sleepy")]
    for run in runs:
        conductor.add(driver_for(ws, run))
    conductor.step(0.0)
    ended = conductor.cancel_all("canceled: shutting down")
    assert {r.id for r in ended} == {r.id for r in runs}
    assert all(r.state == RunState.CANCELED for r in ended)
    assert not conductor.active
    assert conductor.step(0.1) == []  # late outcomes of the killed attempts are ignored


def test_a_dead_driver_s_attempts_run_again_whatever_the_policy_then_it_decides(
    ws_factory,
) -> None:
    # "endless" has no retries: a scheduler killed under it must not fail it, but a task that
    # keeps killing its drivers must not run forever either.
    from legato.engine.driver import MAX_INTERRUPTIONS

    ws = ws_factory()
    run = queue_run(ws, "stubborn")
    owner = OWNER
    for _ in range(MAX_INTERRUPTIONS + 1):
        conductor = Conductor(ws.executor())
        driver = driver_for(ws, ws.store.runs.get_run(run.id), owner=this_owner(), take_over=owner)
        owner = driver.owner
        conductor.add(driver)
        if driver.rows["endless"].state == TaskState.FAILED:
            conductor.step(0.0)
            break
        conductor.step(0.0)
        assert tasks_of(ws, run.id)["endless"].state == TaskState.RUNNING
        driver.abandon("killed: test")  # as if its process died: nothing more recorded
    outcomes = [a.outcome for a in ws.store.runs.get_attempts(run.id, "endless")]
    assert outcomes == ["interrupted"] * MAX_INTERRUPTIONS
    assert tasks_of(ws, run.id)["endless"].state == TaskState.FAILED


def test_an_interrupted_attempt_does_not_use_up_a_retry(ws_factory) -> None:
    ws = ws_factory()
    run = queue_run(ws, "stopped_then_flaky")
    first = Conductor(ws.executor())
    driver = driver_for(ws, run)
    first.add(driver)
    first.step(0.0)
    driver.abandon("killed: test")  # its scheduler died mid-attempt
    again = Conductor(ws.executor())
    again.add(driver_for(ws, ws.store.runs.get_run(run.id), owner=this_owner(), take_over=OWNER))
    done = drive_all(again)
    # retries=1: the real failure of attempt 2 still gets its retry.
    assert done[run.id].state == RunState.SUCCEEDED
    outcomes = [a.outcome for a in ws.store.runs.get_attempts(run.id, "flaky_after_stop")]
    assert outcomes == ["interrupted", "failed", "succeeded"]
