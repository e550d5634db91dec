"""Writing a driver's step to the store in one transaction (extending the run's lease), and
counting the step's metrics once it is written."""

from __future__ import annotations

import logging
from datetime import timedelta

from legato.domain.records import Changes, Progress
from legato.engine.driver_state import DriverState
from legato.observability import metrics
from legato.store.db import is_unavailable

log = logging.getLogger("legato.engine")
#: Seconds between tries to write a step while the store is unreachable.
STORE_RETRY = 1.0


class DriverWrites(DriverState):
    """A driver's step written: ``flush``, or its three parts for a Conductor."""

    def flush(self) -> None:
        """Write this step's changes (and extend the lease) in one transaction."""
        changes = self.staged()
        try:
            self.store.runs.apply(changes)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.unwritten(exc)
            return
        self.written()

    # The three parts of ``flush``, for a Conductor writing several drivers' steps in one
    # transaction: ``staged``, then (its own write) ``written``, or ``unwritten`` if the store
    # was unreachable. Any other failure of the write: call ``flush`` instead.

    def staged(self) -> Changes:
        """This step's changes, ready to be written (the lease to be extended to now + TTL)."""
        changes = self.book.changes
        changes.lease_expires_at = self.clock() + timedelta(seconds=self.lease_ttl)
        # A row changed twice in one step is written once, as it is now; a row made in this
        # step is inserted as it is now.
        if changes.task_runs:
            latest = {r.task_key: r for r in changes.task_runs}
            changes.new_task_runs = [latest.pop(r.task_key, r) for r in changes.new_task_runs]
            changes.task_runs = list(latest.values())
        if self.lineage is not None:
            # From all the step's events: a step kept while the store was down is told whole.
            changes.lineage = self.lineage.events(changes.events)
        return changes

    def unwritten(self, exc: Exception) -> None:
        """The step could not be written because the store is unreachable."""
        # The store is down for a while (a restart): keep the step's changes, let the
        # attempts go on, and write everything once it is back. If it stays down past
        # the lease, another scheduler takes the run and this driver gets LeaseLost.
        if not self.store_down:
            log.warning("run %s: cannot write to the store (%s); retrying", self.run_id, exc)
        self.store_down = True
        self.last_flush = self.clock() - timedelta(seconds=self.lease_ttl / 3 - STORE_RETRY)

    def written(self) -> None:
        """The step (``staged()``) is written: start the next one."""
        changes = self.book.changes
        if self.store_down:
            log.warning("run %s: the store is back; the pending changes are written", self.run_id)
            self.store_down = False
        if changes.attempts or changes.run is not None:
            self._count(changes)  # once written: a step kept while the store is down waits
        changed = [*changes.new_task_runs, *changes.task_runs]
        self.book.changes = self._new_changes()
        self.last_flush = self.clock()
        if self.on_progress is not None:
            self.on_progress(Progress(self.run, changed, self.counts))

    def _count(self, changes: Changes) -> None:
        """The metrics of a written step: attempts ended, and the run's end."""
        name = self.pipeline.name
        # The labelled series are looked up once per run and outcome or task, not per attempt.
        by_outcome, by_node = self._attempt_series, self._duration_series
        for att in changes.attempts:
            key = (att.task_key, att.number)
            retried = key in self._retried
            if retried:
                self._retried.discard(key)
            outcome = metrics.attempt_outcome(att.outcome, retried=retried)
            counter = by_outcome.get(outcome)
            if counter is None:
                counter = by_outcome[outcome] = metrics.ATTEMPTS.labels(name, outcome)
            counter.inc()
            # By the task's name, not its node: a loop calling a task 10,000 times makes
            # one series, as a mapped task's elements do (10,000 histograms took 0.25 s).
            row = self.rows.get(att.task_key)
            node = self.pipeline.graph.nodes.get(row.node) if row is not None else None
            label = node.task.name if node is not None else att.task_key
            durations = by_node.get(label)
            if durations is None:
                durations = by_node[label] = metrics.ATTEMPT_SECONDS.labels(name, label)
            durations.observe(max(0.0, (att.finished_at - att.started_at).total_seconds()))
        run = changes.run
        if run is None:
            return
        if self._starting:
            self._starting = False
            metrics.RUNS_STARTED.labels(name).inc()
        if run.state.finished:
            metrics.RUNS_FINISHED.labels(name, run.state.value).inc()
