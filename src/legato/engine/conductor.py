"""Drives many runs at once, in one thread, over one shared executor.

Each run keeps its own ``RunDriver`` (its lease, rows, retries, pool slots); the conductor
makes them take turns. One ``step`` advances every run, highest priority first, so that the
runs that matter most take the free workers; then it sleeps in a single ``Executor.wait``
until an attempt finishes, some run has something to do (see ``RunDriver.next_wait``), or
another thread calls ``wake()``; then it hands each outcome to its run.

A run whose driver raises (``LeaseLost`` when another process took the run over, a store
error) is dropped, with the error logged: its attempts are killed, nothing more is written
for it, and the other runs go on.

Shutdown: ``shutdown()`` leaves every run to be carried on instead of canceling it. It
kills the attempts still running, records them as interrupted with their tasks ready to run
again (using up no retry), then gives back each run's pool slots and lease: the runs stay
running with nobody holding them, so a restarted daemon (or ``legato resume``, on any host)
takes them up at once. ``cancel_all()`` is there for when runs should end for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from legato.clock import Clock, system_clock
from legato.domain.records import RunRecord, TaskRunRecord
from legato.engine.driver import RunDriver
from legato.executors.interface import AttemptSpec, Executor
from legato.observability import metrics
from legato.observability.logs import log_context
from legato.store.db import is_disk_full, is_unavailable

log = logging.getLogger("legato.engine")

T = TypeVar("T")


def _order(driver: RunDriver) -> tuple[int, int, str]:
    run = driver.run
    return (-run.priority, run.queue_position, run.id)


class Conductor:
    """Many ``RunDriver`` s sharing one executor, driven from one thread.

    Use it from one thread (the daemon's loop); only ``wake()`` may be called from others.
    """

    def __init__(self, executor: Executor, *, clock: Clock = system_clock) -> None:
        self.executor = executor
        self.clock = clock
        self._drivers: dict[str, RunDriver] = {}
        self._in_flight = 0  # attempts submitted whose outcome has not come back yet

    @property
    def active(self) -> frozenset[str]:
        """Ids of the runs being driven."""
        return frozenset(self._drivers)

    @property
    def drivers(self) -> list[RunDriver]:
        """The drivers of the runs being driven, in the order they take free workers."""
        return self._ordered()

    def __len__(self) -> int:
        return len(self._drivers)

    def idle_workers(self) -> int:
        """Free executor slots that the runs being driven have no ready task for: workers
        that will sit idle unless another run is started."""
        ready = sum(len(d.book.queue) for d in self._drivers.values())
        return max(0, self.executor.free_slots() - ready)

    def add(self, driver: RunDriver, task_runs: Sequence[TaskRunRecord] | None = None) -> None:
        """Start driving a run whose lease ``driver.owner`` holds (this calls ``begin``, with
        ``task_runs`` if the caller read them already).

        Raises what ``begin`` raises, leaving the conductor as it was.
        """
        if driver.executor is not self.executor:
            raise ValueError(f"run {driver.run_id}: its driver uses another executor")
        if driver.run_id in self._drivers:
            raise ValueError(f"run {driver.run_id} is being driven already")
        try:
            driver.begin(task_runs)
        except BaseException:
            driver.conditions.close()
            raise
        self._drivers[driver.run_id] = driver

    def wake(self) -> None:
        """Make a ``step`` blocked in the executor return now. Thread-safe: for the threads
        that queued a run or asked for something the loop should see at once."""
        self.executor.wake()

    def step(self, max_wait: float) -> list[RunRecord]:
        """One round: advance every run (higher priority first) and finish those that are
        done, wait at most ``max_wait`` seconds for outcomes, deliver them, kill attempts past
        their timeout, then advance and finish again. Returns the runs finished in this
        round.

        Each advance writes the steps of all the runs in one transaction before any of their
        attempts is submitted (``_write``): one commit per round, not one per run.

        Raises what the executor raises (ExecutorError: no worker can be started any more);
        an error of one run only drops that run.
        """
        finished: list[RunRecord] = []
        started = self._advance_all(finished)
        now = self.clock()
        wait = max_wait
        for driver in self._drivers.values():
            wait = min(wait, driver.next_wait(now))
        self._gauges(started)
        outcomes = self.executor.wait(max(0.0, wait))
        now = self.clock()
        for out in outcomes:
            found = self._drivers.get(out.run_id)
            if found is not None:  # else a run dropped or finished meanwhile: nothing to do
                # The outcomes taken together are recorded at one time (if on one clock).
                self._call(found, found.deliver, out, now if found.clock is self.clock else None)
        for driver in list(self._drivers.values()):
            self._call(driver, driver.check_timeouts)
        # The workers just freed take the next ready tasks now, in the same round.
        started = self._advance_all(finished)
        self._gauges(started - len(outcomes))
        return finished

    def _advance_all(self, finished: list[RunRecord]) -> int:
        """Advance every run and record the end of those done, writing all their steps at
        once, then submit the attempts; appends the runs finished. Attempts started."""
        free = self.executor.free_slots()
        launches: list[tuple[RunDriver, list[list[AttemptSpec]]]] = []
        for driver in self._ordered():
            jobs = self._call(driver, driver.prepare, free)
            if jobs is None:
                continue  # dropped
            free -= len(jobs)  # a batch takes one slot
            if jobs or driver.write_due:
                launches.append((driver, jobs))
        ending = [d for d in self._ordered() if d.done]
        for driver in ending:
            self._call(driver, driver.end)
        self._write([d for d, _ in launches if d.write_due] + [
            d for d in ending if d.run_id in self._drivers
        ])
        started = 0
        for driver, jobs in launches:
            if driver.run_id in self._drivers:  # else dropped: its step was not written
                started += self._call(driver, driver.launch, jobs) or 0
        self._finish_done(finished)
        return started

    def _write(self, drivers: list[RunDriver]) -> None:
        """Write the steps of ``drivers`` in one transaction. If that fails for another reason
        than an unreachable store (a lost lease, a bad row), each is written on its own, so
        that the failure is the failing run's alone (it is dropped, see ``_call``)."""
        if not drivers:
            return
        store = drivers[0].store
        if len(drivers) == 1 or any(d.store is not store for d in drivers):
            for driver in drivers:
                self._call(driver, driver.flush)
            return
        try:
            store.runs.apply_all([d.staged() for d in drivers])
        except Exception as exc:
            if is_unavailable(exc):
                for driver in drivers:
                    driver.unwritten(exc)  # each keeps its step and tries again
                return
            for driver in drivers:
                self._call(driver, driver.flush)
            return
        for driver in drivers:
            self._call(driver, driver.written)

    def _gauges(self, attempts: int) -> None:
        # Set twice a step, around the wait, so a scrape during a long wait sees the work.
        self._in_flight = max(0, self._in_flight + attempts)
        metrics.EXECUTOR_BUSY.set(self._in_flight)
        metrics.EXECUTOR_FREE.set(self.executor.free_slots())
        metrics.RUNS_DRIVEN.set(len(self._drivers))

    def cancel_all(self, reason: str = "canceled: the daemon stopped") -> list[RunRecord]:
        """Cancel every run (killing its attempts) and record its end; returns the runs."""
        finished: list[RunRecord] = []
        for driver in self._ordered():
            self._call(driver, driver.cancel, reason)
        self._finish_done(finished)
        return finished

    def shutdown(self, reason: str = "interrupted: the daemon stopped") -> None:
        """Stop driving every run and leave it to be carried on (``RunDriver.suspend``).

        Attempts are killed first, so no work goes on once the leases are given back
        (attempts of ``in_process`` tasks run in threads that cannot be killed: they go on
        until this process ends, and run again when the run is resumed).
        """
        drivers, self._drivers = self._ordered(), {}
        for driver in drivers:
            try:
                driver.suspend(reason)
            except Exception:
                log.exception("run %s: could not stop it cleanly", driver.run_id)

    # -- internals ---------------------------------------------------------------------

    def _ordered(self) -> list[RunDriver]:
        return sorted(self._drivers.values(), key=_order)

    def _call(self, driver: RunDriver, fn: Callable[..., T], *args: object) -> T | None:
        try:
            with log_context(run_id=driver.run_id, pipeline=driver.pipeline.name):
                return fn(*args)
        except Exception as exc:
            if is_unavailable(exc):
                # The store is down for a while: the run is kept and tried again next round
                # (its driver keeps what it could not write).
                log.warning("run %s: the store is unreachable: %s", driver.run_id, exc)
                return None
            if is_disk_full(exc):
                # No run's progress can be written, and waiting would not help: stop every
                # attempt, leave each run resumable as the store last has it, and let the
                # owner stop and say what to free.
                self._abandon_all("interrupted: the disk under the store is full")
                raise
            self._drop(driver, exc)
            return None

    def _abandon_all(self, reason: str) -> None:
        drivers, self._drivers = self._ordered(), {}
        for driver in drivers:
            try:
                driver.abandon(reason, release=True)
            except Exception:
                log.warning("run %s: could not kill its attempts", driver.run_id)

    def _drop(self, driver: RunDriver, exc: Exception) -> None:
        if self._drivers.pop(driver.run_id, None) is None:
            return
        log.error(
            "run %s: stopped driving it: %s", driver.run_id, exc, exc_info=exc,
            extra={"run_id": driver.run_id, "pipeline": driver.pipeline.name},
        )
        try:
            driver.abandon(f"interrupted: the driver of the run failed: {exc}")
        except Exception:
            log.exception("run %s: could not kill its attempts", driver.run_id)

    def _finish_done(self, finished: list[RunRecord]) -> None:
        done = [d for d in self._ordered() if d.done]
        freed: set[str] = set()
        for driver in done:
            record = self._call(driver, driver.finish)
            if record is None and driver.run_id in self._drivers:
                continue  # the store is unreachable: its end is written once it is back
            self._drivers.pop(driver.run_id, None)
            if record is not None:
                finished.append(record)
        for driver in [*done, *self._drivers.values()]:
            freed |= driver.pools.take_released()
        if freed:
            # A slot given back here can go to another run of this process at once,
            # rather than when that run next asks the store.
            for driver in self._drivers.values():
                driver.pools.freed()
