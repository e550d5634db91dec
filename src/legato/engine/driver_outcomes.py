"""Taking a driver's attempt outcomes: a success (and the assets it materialized), a skip, a
failure and its retry, the retries waiting on time or on a condition."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.domain.materializations import ASSET_METADATA, NewMaterialization
from legato.domain.records import NewEvent, TaskRunRecord
from legato.domain.refs import ResultRef
from legato.domain.states import TaskState
from legato.engine.driver_state import DriverState
from legato.executors.checking import check_result
from legato.executors.interface import BATCH_LOST, LOG_NOTE, AttemptOutcome

if TYPE_CHECKING:
    from legato.definitions.assets import Asset

S = TaskState
log = logging.getLogger("legato.engine")
#: Attempts of a task in a row cut short by the death of its run's driver that are run
#: again whatever the retry policy says; past it the policy decides.
MAX_INTERRUPTIONS = 3
# An attempt that ended this way says nothing about the task's own code: always retryable.
_INFRA_OUTCOMES = frozenset({"timeout", "crashed", "interrupted"})
# Attempts stopped from outside: their worker did not finish their log.
_UNENDED = frozenset({"timeout", "crashed", "canceled"})


class DriverOutcomes(DriverState):
    """What an attempt's outcome does to its task, and when a failed task runs again."""

    def deliver(self, out: AttemptOutcome, now: datetime | None = None) -> None:
        """Record an attempt's outcome (reported late, for an attempt already settled: ignored).

        The pool slot the attempt held is given back at once, whatever the outcome. ``now``:
        when the outcomes this one came with were taken (the clock's time by default).
        """
        row = self.rows.get(out.task_key)
        if row is None or row.state != S.RUNNING or row.attempt != out.attempt:
            return  # a late report of an attempt already settled (killed, canceled)
        self.pools.release(out.task_key)
        self.deadlines.pop(out.task_key, None)
        now = self.clock() if now is None else now
        self._batches.ended(row, now)
        self.book.record_attempt(
            row,
            out.status,
            out.error,
            out.traceback,
            now,
            self._log_path(row.task_key, row.attempt),
            out.worker,
        )
        if self.span is not None:
            self.span.end_attempt(row.task_key, out.status, out.error, now)
        if self.after_kill is not None and out.status in _UNENDED:
            try:
                self.after_kill(self._log_path(row.task_key, row.attempt))
            except Exception:  # the outcome matters more; every read of the log masks it too
                log.exception(
                    "run %s: cannot mask the log of %s", self.run_id, row.task_key,
                    extra={"task": row.task_key, "attempt": row.attempt},
                )
        if out.checks:
            self.book.changes.checks.extend(
                check_result(self.book.run, row.task_key, c, now) for c in out.checks
            )
        note = out.extra.get(LOG_NOTE)
        if note:
            # Kept with the run's events: whoever reads this log is told it is not whole.
            self.book.changes.events.append(
                NewEvent(self.run_id, row.task_key, "log", None, "cut", now,
                         f"attempt {row.attempt}: {note}")
            )
        if out.status == "succeeded":
            result = out.result or ResultRef(None, "none")
            if out.item_refs is not None:
                self.item_refs[row.task_key] = out.item_refs
            self.book.set_task(
                out.task_key,
                S.SUCCEEDED,
                finished_at=now,
                result_uri=result.uri,
                result_format=result.format,
                result_note=result.note,
                item_count=out.item_count,
                error=None,
            )
            produces = self.pipeline.graph.nodes[row.node].task.produces
            if produces:
                self._materialized(row, produces, out, now)
        elif out.status == "skipped":
            self.book.set_task(out.task_key, S.SKIPPED, out.error, finished_at=now)
        elif out.status == "interrupted" and out.extra.get(BATCH_LOST):
            # Its batch's worker died or was stopped: this element did not fail (it may not
            # have started). It runs again at once, on its own, so that an element that
            # kills its worker is found out and fails alone.
            key = out.task_key
            self._batches.lost(key)
            self._past.setdefault(key, []).append("interrupted")
            if interrupted_streak(self._past[key]) < MAX_INTERRUPTIONS:
                self.book.set_task(key, S.UP_FOR_RETRY, out.error, finished_at=now,
                                   next_attempt_at=now, error=out.error)
            else:
                self._after_failure(key, "interrupted", retryable=True, error=out.error)
        else:
            retryable = out.retryable or out.status in _INFRA_OUTCOMES
            self._after_failure(out.task_key, out.status, retryable=retryable, error=out.error)

    def _materialized(
        self, row: TaskRunRecord, produces: tuple[Asset, ...], out: AttemptOutcome, now: datetime
    ) -> None:
        """Record a materialization of each asset the task produces, for the run's partition,
        in the step that records its success."""
        metadata = out.extra.get(ASSET_METADATA) or {}
        run = self.book.run
        self.book.changes.materializations.extend(
            NewMaterialization(a.key, run.partition, run.pipeline, run.id, row.task_key, now,
                               metadata)
            for a in produces
        )  # fmt: skip

    def _after_failure(self, key: str, status: str, *, retryable: bool, error: str | None) -> None:
        row = self.rows[key]
        policy = self.pipeline.graph.nodes[row.node].task.retry
        now = self.clock()
        used = row.attempt - _free_attempts(self._past.get(key, ()))
        if retryable and used < policy.max_attempts:
            self._retried.add((key, row.attempt))
            wait = policy.delay_before(used + 1, self.rng)
            self.book.set_task(
                key,
                S.UP_FOR_RETRY,
                f"{status}; retry in {wait:.1f}s",
                finished_at=now,
                next_attempt_at=now + timedelta(seconds=wait),
                error=error,
            )
            self.conditions.reset(key)
        else:
            why = error or status
            if retryable and policy.retries:
                why = f"{why} (after {used} attempts)"
            self.book.set_task(key, S.FAILED, why, finished_at=now, error=why)

    # -- retries waiting on time or on a condition -------------------------------------

    def _due_retries(self, now: datetime) -> None:
        for key in list(self.book.retrying):
            row = self.rows[key]
            if row.next_attempt_at is None:
                continue
            if row.next_attempt_at > now or self.conditions.checking(key):
                continue
            cond = self.pipeline.graph.nodes[row.node].task.retry.condition
            if cond is None:
                self.book.set_task(key, S.QUEUED, next_attempt_at=None)
                continue
            self.conditions.start(key, cond)

    def _condition_results(self, now: datetime) -> None:
        for key, holds in self.conditions.answers():
            row = self.rows[key]
            if row.state != S.UP_FOR_RETRY:
                continue
            cond = self.pipeline.graph.nodes[row.node].task.retry.condition
            assert cond is not None
            if holds:
                self.book.changes.events.append(
                    NewEvent(
                        self.run_id, key, "condition", None, "true", now, f"{cond.label} holds"
                    )
                )
                self.book.set_task(key, S.QUEUED, next_attempt_at=None)
                continue
            done = self.conditions.count_false(key)
            since = row.finished_at or now
            if cond.timeout is not None and (now - since).total_seconds() >= cond.timeout:
                msg = f"{row.error}; condition {cond.label} did not hold within {cond.timeout:g}s"
                self.book.set_task(key, S.FAILED, msg, error=msg)
                continue
            wait = cond.next_interval(done - 1)
            self.book.set_task(
                key,
                S.UP_FOR_RETRY,
                f"condition {cond.label} not yet true",
                next_attempt_at=now + timedelta(seconds=wait),
            )


def interrupted_streak(outcomes: Sequence[str]) -> int:
    """How many of the last ``outcomes`` in a row are "interrupted"."""
    count = 0
    for outcome in reversed(outcomes):
        if outcome != "interrupted":
            break
        count += 1
    return count


def _free_attempts(outcomes: Sequence[str]) -> int:
    """Attempts that do not count against the retry policy: in each streak of interrupted
    ones, the first MAX_INTERRUPTIONS - 1 (the task was stopped, it did not fail)."""
    free = streak = 0
    for outcome in outcomes:
        streak = streak + 1 if outcome == "interrupted" else 0
        if 0 < streak < MAX_INTERRUPTIONS:
            free += 1
    return free
