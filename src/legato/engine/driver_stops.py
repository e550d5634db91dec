"""Stopping a driver's attempts and its run: a cancel (requested or on Ctrl-C), timeouts, the
run's end, and stopping driving it (abandon, suspend) so that another driver carries on."""

from __future__ import annotations

from datetime import datetime

from legato.domain.states import TaskState
from legato.engine.driver_writes import DriverWrites
from legato.store.db import is_unavailable

S = TaskState


class DriverStops(DriverWrites):
    """Kills of a driver's attempts, and the ways its run ends or is handed on."""

    # -- cancel and timeouts -----------------------------------------------------------

    def _check_cancel(self, now: datetime) -> bool:
        if (now - self.last_cancel_check).total_seconds() < self.cancel_poll:
            return False
        self.last_cancel_check = now
        try:
            return self.store.runs.get_run(self.run_id).cancel_requested
        except Exception as exc:
            if is_unavailable(exc):
                return False  # asked again at the next poll
            raise

    def cancel(self, reason: str = "canceled by request") -> None:
        """Stop every attempt and mark what has not finished as canceled."""
        now = self.clock()
        self.book.canceling = True
        for key in list(self.rows):
            row = self.rows[key]
            if row.state.finished:
                continue
            if row.state == S.RUNNING and not (row.map_index is None and row.node in self.children):
                self.executor.kill(self.run_id, key, row.attempt, "canceled", reason)
                self.book.record_attempt(
                    row, "canceled", reason, None, now, self._log_path(key, row.attempt)
                )
                if self.span is not None:
                    self.span.end_attempt(key, "canceled", reason, now)
            self.book.set_task(key, S.CANCELED, reason, finished_at=now)
        self.deadlines.clear()
        self.book.queue.clear()
        if self.uses_pools:
            self.pools.release_all()  # the attempts holding them were killed just now

    def check_timeouts(self) -> None:
        """Kill the attempts that ran past their timeout (their outcomes come from wait)."""
        now = self.clock()
        for key, deadline in list(self.deadlines.items()):
            if deadline <= now:
                row = self.rows[key]
                limit = self.pipeline.graph.nodes[row.node].task.timeout
                self.executor.kill(
                    self.run_id, key, row.attempt, "timeout", f"timed out after {limit:g}s"
                )
                del self.deadlines[key]

    # -- stopping driving --------------------------------------------------------------

    def interrupt(self) -> None:
        """What Ctrl-C does to ``drive()``: stop what runs and record the run as canceled,
        so that it does not wait for a resume. Best effort: if the store cannot be written
        now, the lease expires and ``legato resume`` settles the run instead."""
        try:
            self.cancel("canceled: the process driving the run was interrupted")
            self._finish_run()
            self.flush()
        except Exception:
            pass
        finally:
            self.conditions.close()

    def abandon(self, reason: str, *, release: bool = False) -> None:
        """Stop driving without recording anything: kill this run's running attempts (their
        outcomes will be ignored) so that no work goes on unowned.

        The store still says the run is running, so it can be resumed. With ``release``
        the run's pool slots and lease are given back (best effort), so that any process
        may resume it at once; without, it waits for its lease to run out. Use ``release``
        only while this driver still holds the lease.
        """
        for key, row in self.rows.items():
            if row.state == S.RUNNING and not (row.map_index is None and row.node in self.children):
                self.executor.kill(self.run_id, key, row.attempt, "interrupted", reason)
        self.deadlines.clear()
        self.conditions.close()
        self._end_span("running", reason)
        if release:
            try:
                if self.uses_pools:
                    self.pools.release_all()
                self.store.runs.release_lease(self.run_id, self.owner)
            except Exception:
                pass  # the lease runs out by itself

    def suspend(self, reason: str) -> None:
        """Stop driving so that the next driver carries on where this one stopped.

        Running attempts are killed and recorded as interrupted; their tasks wait to run
        again at once (a stop of the daemon is not a failure of the task, so it uses up no
        retry). Then the pool slots and the lease are given back.
        """
        now = self.clock()
        for key, row in list(self.rows.items()):
            if row.state != S.RUNNING or (row.map_index is None and row.node in self.children):
                continue
            self.executor.kill(self.run_id, key, row.attempt, "interrupted", reason)
            self.book.record_attempt(
                row, "interrupted", reason, None, now, self._log_path(key, row.attempt)
            )
            if self.span is not None:
                self.span.end_attempt(key, "interrupted", reason, now)
            self.book.set_task(
                key, S.UP_FOR_RETRY, reason, finished_at=now, next_attempt_at=now, error=reason
            )
        try:
            self.flush()
        finally:
            self.abandon(reason, release=True)

    # -- the run's end -----------------------------------------------------------------

    def _finish_run(self) -> None:
        state, error = self.book.outcome()
        self.book.set_run(
            state, finished_at=self.clock(), error=error, lease_owner=None, lease_expires_at=None
        )
        self._end_span(str(state), error)

    def _end_span(self, state: str, error: str | None) -> None:
        # "running" when this process stops driving a run that goes on elsewhere: a resume
        # opens a new run span in the process that carries it on.
        if self.span is not None:
            span, self.span = self.span, None
            span.end(state, error, self.clock())

