"""Drives one run to its end: lease, dispatch, outcomes, retries, timeouts, cancel, resume.

Every state change of a step is written to the store in one transaction (``RunStore.apply``)
before the attempts it starts are submitted, so a driver killed at any point leaves a store
from which another driver can carry on. The loop sleeps only inside ``Executor.wait``.
The rows, readiness and the batch of changes are kept by ``RunBook`` (``engine/book.py``),
the run's pool slots by ``PoolClaims`` (``engine/pools.py``).

``drive()`` runs the whole loop for one run. The loop's steps are public too (``begin``,
``advance``, ``deliver``, ``check_timeouts``, ``next_wait``, ``finish``), so that a
``Conductor`` (``engine/conductor.py``) can drive many runs over one shared executor.

This module holds the loop and its steps; the driver's parts are modules of their own: its
state (``driver_state.py``), writing a step (``driver_writes.py``), starting attempts
(``driver_dispatch.py``), taking their outcomes and retries (``driver_outcomes.py``), and
cancel, timeouts and the run's end (``driver_stops.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from legato.domain.records import RunRecord, TaskRunRecord
from legato.domain.states import RunState, TaskState
from legato.engine.driver_dispatch import DriverDispatch
from legato.engine.driver_outcomes import MAX_INTERRUPTIONS, DriverOutcomes, interrupted_streak
from legato.engine.driver_state import ProgressCallback
from legato.engine.driver_stops import DriverStops
from legato.engine.driver_writes import STORE_RETRY
from legato.executors.interface import AttemptSpec
from legato.store.db import is_disk_full

__all__ = ["MAX_INTERRUPTIONS", "STORE_RETRY", "ProgressCallback", "RunDriver"]

S = TaskState


class RunDriver(DriverStops, DriverOutcomes, DriverDispatch):
    """Holds a run's lease and moves it forward until it is finished.

    ``owner`` must already hold the lease (see ``services.runs``). ``cancel_poll`` is how
    often the store is asked whether someone requested a cancel: SQLite offers no
    notifications, so this is one deliberate poll in the loop. ``pool_poll`` is the other:
    how often a task waiting for a slot of a full pool asks the store again (slots freed by
    other processes cannot be seen otherwise).
    """

    # -- start and resume --------------------------------------------------------------

    def _load(self, resumed: bool, task_runs: Sequence[TaskRunRecord] | None) -> None:
        book = self.book
        book.load(self.store.runs.get_task_runs(self.run_id) if task_runs is None else task_runs)
        if resumed:
            # Outcomes of earlier attempts: those cut short by a stop or a dead driver do
            # not count against the retry policy (see _free_attempts in driver_outcomes.py).
            for past in self.store.runs.get_attempts(self.run_id):
                self._past.setdefault(past.task_key, []).append(past.outcome)
        now = self.clock()
        for key, row in list(self.rows.items()):
            if row.state != S.RUNNING:
                continue
            if row.map_index is None and row.node in self.children:
                continue  # an expanded mapped node: its elements carry the work
            reason = "interrupted: the process driving this run stopped"
            book.record_attempt(
                row, "interrupted", reason, None, now, self._log_path(key, row.attempt)
            )
            self._past.setdefault(key, []).append("interrupted")
            if interrupted_streak(self._past[key]) < MAX_INTERRUPTIONS:
                # The driver died (a scheduler killed, a machine lost), not the task: run
                # it again at once, whatever its retry policy, as after a clean stop.
                book.set_task(
                    key, S.UP_FOR_RETRY, reason, finished_at=now, next_attempt_at=now, error=reason
                )
            else:  # the task itself may be what kills its drivers: the policy decides
                self._after_failure(key, "interrupted", retryable=True, error=reason)
        book.start()

    # -- the steps -----------------------------------------------------------------------

    def next_wait(self, now: datetime | None = None) -> float:
        """Seconds until this run has something to do that no outcome will announce: renew
        its lease, ask about a cancel, kill an attempt that timed out, start a retry, ask
        again for a pool slot."""
        now = self.clock() if now is None else now
        horizon = [
            self.last_flush + timedelta(seconds=self.lease_ttl / 3),
            self.last_cancel_check + timedelta(seconds=self.cancel_poll),
        ]
        horizon.extend(self.deadlines.values())
        for key in self.book.retrying:
            at = self.rows[key].next_attempt_at
            if at is not None and not self.conditions.checking(key):
                horizon.append(at)
        wait = min((t - now).total_seconds() for t in horizon)
        if self.conditions.busy():
            wait = min(wait, 0.02)  # condition checks run in threads the executor cannot see
        pool_wait = self.pools.seconds_to_retry(now)
        if pool_wait is not None:
            wait = min(wait, pool_wait)
        return max(0.0, wait)

    def begin(self, task_runs: Sequence[TaskRunRecord] | None = None) -> None:
        """Mark the run running and load its rows; attempts a dead driver left running are
        recorded as interrupted and run again (up to MAX_INTERRUPTIONS in a row, then as
        their retry policy allows). Call it once. ``task_runs``: the run's task runs as
        the store has them, read by the caller since this driver took the lease (a batch of
        runs claimed together reads theirs at once); None: read here."""
        if self._begun:
            raise RuntimeError(f"run {self.run_id} has begun already")
        self._begun = True
        book = self.book
        resumed = book.run.state != RunState.QUEUED
        if book.run.code_version != self.pipeline.code_version:
            # The run was made from other code than the code it runs on here (the code
            # changed since, or `legato submit` loaded other files): record what runs it.
            book.set_run(book.run.state, code_version=self.pipeline.code_version)
        if not resumed:
            book.set_run(RunState.RUNNING, started_at=self.clock())
            self._starting = True  # counted once the step saying so is written
        if self.tracing is not None:
            run = book.run
            self.span = self.tracing.run(
                run.id, run.pipeline, run.partition, self.clock(), resumed=resumed
            )
        self._load(resumed, task_runs)
        if resumed and self.uses_pools:
            # Slots claimed by the driver this run had before: none of its attempts runs now.
            self.pools.release_all()

    @property
    def done(self) -> bool:
        """Whether every task is finished (``finish()`` is what is left to do)."""
        return self.book.unfinished == 0

    def advance(self) -> int:
        """One step: take condition answers and due retries, act on a cancel request, start
        attempts on the executor's free slots, then write the step (renewing the lease) and
        submit its attempts, in that order. Returns how many attempts it started."""
        jobs = self.prepare()
        if self.write_due:
            self.flush()
        return self.launch(jobs)

    def prepare(self, free: int | None = None) -> list[list[AttemptSpec]]:
        """``advance`` up to the write: the attempts to submit once the step is written, by
        executor slot (a job: one attempt, or a batch); ``write_due`` tells
        whether it has to be (then ``flush``, or a Conductor's batch);
        none when the run is done (``finish()`` writes what is left). ``free``: the
        executor's slots left for this run (None: all it has free now)."""
        book = self.book
        now = self.clock()
        self.write_due = False
        self._condition_results(now)
        self._due_retries(now)
        if self._check_cancel(now):
            self.cancel()
        jobs = self._dispatch(free)
        if book.unfinished == 0:
            return []
        self.write_due = bool(
            jobs
            or not book.changes.empty()
            or (now - self.last_flush).total_seconds() >= self.lease_ttl / 3
        )
        return jobs

    def launch(self, jobs: Sequence[Sequence[AttemptSpec]]) -> int:
        """Submit the attempts of a step that is written (or kept while the store is down):
        each job on a slot of its own, alone or as a batch. Returns the attempts started."""
        started = 0
        for job in jobs:
            if len(job) == 1:
                self.executor.submit(job[0])
            else:
                assert self._batching is not None
                self._batching.submit_batch(list(job))
            started += len(job)
        return started

    def end(self) -> None:
        """``finish`` up to the write: record the run's end once (then write it: ``flush``,
        or a Conductor's batch; then ``finish`` returns at once if it was written)."""
        if not self._ended:
            try:
                self._finish_run()
            except BaseException:
                self.conditions.close()
                raise
            self._ended = True

    def finish(self) -> RunRecord | None:
        """Record the run's end and give back its pool slots; call it once ``done``.

        Returns None, keeping the end to write, while the store is unreachable: call it
        again later.
        """
        try:
            if not self._ended:
                self._finish_run()
                self._ended = True
            if not self.book.changes.empty() or self.store_down:
                self.flush()  # unless a Conductor's batch wrote it (after end())
            if self.store_down:
                return None
            if self.uses_pools:
                self.pools.release_all()
        except BaseException:
            self.conditions.close()
            raise
        self.conditions.close()
        return self.book.run

    def drive(self, task_runs: Sequence[TaskRunRecord] | None = None) -> RunRecord:
        """Run until every task is finished; returns the final run record. ``task_runs``:
        as ``begin`` takes them."""
        self.begin(task_runs)
        try:
            while True:
                self.advance()
                if self.done:
                    break
                outcomes = self.executor.wait(self.next_wait())
                now = self.clock()
                for out in outcomes:
                    self.deliver(out, now)
                self.check_timeouts()
            while (record := self.finish()) is None:
                time.sleep(STORE_RETRY)  # the store is unreachable: the end waits for it
            return record
        except KeyboardInterrupt:
            self.interrupt()
            raise
        except Exception as exc:
            if is_disk_full(exc):
                # Waiting would not help: stop the attempts and leave the run as the store
                # last has it, to be resumed once space is freed.
                self.abandon("interrupted: the disk under the store is full", release=True)
            raise
        finally:
            self.conditions.close()
