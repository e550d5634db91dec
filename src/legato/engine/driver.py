"""Drives one run to its end: lease, dispatch, outcomes, retries, timeouts, cancel, resume.

Every state change of a step is written to the store in one transaction (``RunStore.apply``)
before the attempts it starts are submitted, so a driver killed at any point leaves a store
from which another driver can carry on. The loop sleeps only inside ``Executor.wait``.
The rows, readiness and the batch of changes are kept by ``RunBook`` (``engine/book.py``),
the run's pool slots by ``PoolClaims`` (``engine/pools.py``).

``drive()`` runs the whole loop for one run. The loop's steps are public too (``begin``,
``advance``, ``deliver``, ``check_timeouts``, ``next_wait``, ``finish``), so that a
``Conductor`` (``engine/conductor.py``) can drive many runs over one shared executor.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.clock import Clock, system_clock
from legato.config import DEFAULT_MAX_LOG_BYTES
from legato.definitions.graph import Node
from legato.definitions.pipeline import Pipeline
from legato.definitions.secret_param import MASKED, SealedParam
from legato.domain.ids import run_folder
from legato.domain.materializations import ASSET_METADATA, NewMaterialization
from legato.domain.records import (
    Changes,
    NewEvent,
    NotFound,
    Progress,
    RunRecord,
    TaskRunRecord,
)
from legato.domain.refs import ResultRef
from legato.domain.states import RunState, TaskState
from legato.engine import plan
from legato.engine.batching import BatchPolicy, batch_deadline
from legato.engine.book import RunBook
from legato.engine.conditions import ConditionChecks
from legato.engine.lineage import RunLineage
from legato.engine.pools import PoolClaims
from legato.engine.related import resolve_related
from legato.executors.checking import check_result
from legato.executors.interface import (
    BATCH_LOST,
    LOG_NOTE,
    AttemptOutcome,
    AttemptSpec,
    Batching,
    Executor,
    SecretSource,
)
from legato.observability import metrics
from legato.store.db import is_disk_full, is_unavailable
from legato.store.faces import DriverStore

if TYPE_CHECKING:
    from legato.definitions.assets import Asset
    from legato.observability.trace_export import RunSpan, Tracing
    from legato.resources.opened import Declared

S = TaskState
log = logging.getLogger("legato.engine")
#: Attempts of a task in a row cut short by the death of its run's driver that are run
#: again whatever the retry policy says; past it the policy decides.
MAX_INTERRUPTIONS = 3
#: Seconds between tries to write a step while the store is unreachable.
STORE_RETRY = 1.0
# An attempt that ended this way says nothing about the task's own code: always retryable.
_INFRA_OUTCOMES = frozenset({"timeout", "crashed", "interrupted"})
# Attempts stopped from outside: their worker did not finish their log.
_UNENDED = frozenset({"timeout", "crashed", "canceled"})

ProgressCallback = Callable[[Progress], None]


class RunDriver:
    """Holds a run's lease and moves it forward until it is finished.

    ``owner`` must already hold the lease (see ``services.runs``). ``cancel_poll`` is how
    often the store is asked whether someone requested a cancel: SQLite offers no
    notifications, so this is one deliberate poll in the loop. ``pool_poll`` is the other:
    how often a task waiting for a slot of a full pool asks the store again (slots freed by
    other processes cannot be seen otherwise).
    """

    def __init__(
        self,
        store: DriverStore,
        pipeline: Pipeline,
        executor: Executor,
        run: RunRecord,
        *,
        owner: str,
        logs_dir: Path,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        clock: Clock = system_clock,
        lease_ttl: float = 15.0,
        cancel_poll: float = 1.0,
        pool_poll: float = 0.5,
        on_progress: ProgressCallback | None = None,
        rng: random.Random | None = None,
        secrets: SecretSource | None = None,
        resources: Declared | None = None,
        after_kill: Callable[[str], None] | None = None,
        tracing: Tracing | None = None,
        lineage_namespace: str | None = None,
    ) -> None:
        self.store = store
        # None (tracing off) costs one comparison per attempt: no span objects at all.
        self.tracing = tracing
        self.span: RunSpan | None = None
        self.secrets = secrets
        self.resources = resources or None  # the environment's [resources], if any
        # Called with the log of an attempt whose worker did not end it (killed, crashed):
        # the worker masks secret values in its log when an attempt ends, this one could not.
        self.after_kill = after_kill
        self.pipeline = pipeline
        self.executor = executor
        self.run_id = run.id
        self.owner = owner
        self.logs_dir = logs_dir
        self._logs_dir = str(logs_dir)
        self._folder = run_folder(run.id)  # of its results: under the day it was made
        self.max_log_bytes = max_log_bytes
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.store_down = False  # the last write failed because the store was unreachable
        self._ended = False  # finish() has recorded the run's end in the book
        self._past: dict[str, list[str]] = {}  # task key -> outcomes of its attempts so far
        self._retried: set[tuple[str, int]] = set()  # (key, attempt) failed, to run again
        self._attempt_series: dict[str, Any] = {}  # outcome -> its counter
        self._duration_series: dict[str, Any] = {}  # task name -> its histogram
        self.cancel_poll = cancel_poll
        self.on_progress = on_progress
        self.rng = rng or random.Random()
        # The store keeps params as JSON; tasks get them as the pipeline's type hints say.
        self.params = _sealed_params(pipeline, run.params, pipeline.validate_params(run.params))
        self.partition_dims, self.window = _partition_of(pipeline, run.partition)
        self.book = RunBook(run, pipeline.graph, self.params, clock, self._new_changes())
        # None ([lineage] not set): no lineage event is built or written at all.
        self.lineage: RunLineage | None = None
        if lineage_namespace is not None:
            self.lineage = RunLineage(
                pipeline, namespace=lineage_namespace, run_id=run.id, partition=run.partition,
                params=run.params, window=self.window,
            )
        # The book's dicts themselves (it never replaces them), kept here for callers of the driver.
        self.rows = self.book.rows
        self.children = self.book.children
        self.item_refs: dict[str, tuple[ResultRef, ...]] = {}
        self.items_needed = plan.items_needed(pipeline)
        self.deadlines: dict[str, datetime] = {}  # running key -> timeout
        self.conditions = ConditionChecks()
        self.last_flush = self.clock()
        self.last_cancel_check = self.clock()
        self.pools = PoolClaims(store, run.id, pool_poll)
        # Most pipelines use no pool: they never write pool claims at all.
        self.uses_pools = any(n.task.pool for n in pipeline.graph.nodes.values())
        self._begun = False
        self._starting = False
        self.write_due = False  # set by prepare(): the step must be written before launch
        # An executor that takes batches of attempts (the local process pool).
        self._batching = executor if isinstance(executor, Batching) else None
        self._batches = BatchPolicy(lambda node: pipeline.graph.nodes[node].task)
        self._input_refs: dict[str, tuple[TaskRunRecord, ResultRef]] = {}  # see resolve_inputs

    @property
    def run(self) -> RunRecord:
        """The run's row as of the latest change."""
        return self.book.run

    def counts(self) -> dict[TaskState, int]:
        """How many task runs are in each state (mapped nodes count by element)."""
        return self.book.counts()

    # -- writing a step ----------------------------------------------------------------

    def _new_changes(self) -> Changes:
        return Changes(
            run_id=self.run_id,
            owner=self.owner,
            lease_expires_at=self.clock() + timedelta(seconds=self.lease_ttl),
            lease_seconds=self.lease_ttl,
        )

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

    # -- start and resume --------------------------------------------------------------

    def _load(self, resumed: bool, task_runs: Sequence[TaskRunRecord] | None) -> None:
        book = self.book
        book.load(self.store.runs.get_task_runs(self.run_id) if task_runs is None else task_runs)
        if resumed:
            # Outcomes of earlier attempts: those cut short by a stop or a dead driver do
            # not count against the retry policy (see _free_attempts).
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
            if _streak(self._past[key]) < MAX_INTERRUPTIONS:
                # The driver died (a scheduler killed, a machine lost), not the task: run
                # it again at once, whatever its retry policy, as after a clean stop.
                book.set_task(
                    key, S.UP_FOR_RETRY, reason, finished_at=now, next_attempt_at=now, error=reason
                )
            else:  # the task itself may be what kills its drivers: the policy decides
                self._after_failure(key, "interrupted", retryable=True, error=reason)
        book.start()

    # -- attempts ----------------------------------------------------------------------

    def _log_path(self, key: str, attempt: int) -> str:
        return plan.log_path(self._logs_dir, self.run_id, key, attempt)

    def _dispatch(self, free: int | None = None) -> list[list[AttemptSpec]]:
        """The attempts to start now, by slot: one each, or a batch of queued attempts
        (when the executor takes batches and many are queued: a map's elements, a fan)."""
        specs: list[AttemptSpec] = []
        jobs: list[list[AttemptSpec]] = []
        # The executor may be shared: this counts what other runs have left this moment
        # (``free``: what a Conductor counted, less what runs before this one took in a
        # step whose attempts are submitted once all are written).
        free = self.executor.free_slots() if free is None else free
        now = self.clock()
        pools = self.pools
        pools.new_step()
        if pools.due(now):
            # Tasks put aside for a full pool were ready before anything in the queue.
            asked = free > 0
            for key in list(pools.waiting):
                if free <= 0:
                    break
                if self._try_start(key, now, specs):
                    free -= 1
            pools.tried(now, asked=asked)
        queue = self.book.queue
        batching = self._batching
        while queue and free > 0:
            key = queue.popleft()
            if batching is not None and self._batches.batchable(self.rows[key]):
                task = self.pipeline.graph.nodes[self.rows[key].node].task
                size = batching.batch_size(
                    len(queue) + 1, at_once=task.concurrency if task.is_async else 1
                )
                if size > 1:
                    jobs.append(self._start_batch(key, size, now))
                    free -= 1
                    continue
            if self._try_start(key, now, specs):
                free -= 1
        jobs.extend([spec] for spec in specs)
        return jobs

    def _start_batch(self, key: str, size: int, now: datetime) -> list[AttemptSpec]:
        """Start ``key`` and the batchable attempts queued right behind it, ``size`` at
        most, as one batch."""
        row = self.rows[key]
        batch = [self._start(key, row, now)]
        queue = self.book.queue
        while queue and len(batch) < size:
            nxt = queue[0]
            if self.rows[nxt].state != S.QUEUED:
                queue.popleft()  # moved on since it was queued
                self.pools.stop_waiting(nxt)
                continue
            if not self._batches.together(row, self.rows[nxt]):
                break
            queue.popleft()
            batch.append(self._start(nxt, self.rows[nxt], now))
        self._batches.started([spec.task_key for spec in batch])
        task = self.pipeline.graph.nodes[row.node].task
        if task.is_async:
            # The worker times each coroutine out; this deadline is for a blocked loop.
            for spec in batch:
                limit = spec.timeout
                if limit is not None:
                    self.deadlines[spec.task_key] = now + timedelta(
                        seconds=batch_deadline(limit, len(batch), task.concurrency)
                    )
        return batch

    def _try_start(self, key: str, now: datetime, specs: list[AttemptSpec]) -> bool:
        """Start ``key``'s next attempt if it is queued and its pool (if any) has a slot."""
        row = self.rows[key]
        if row.state != S.QUEUED:
            self.pools.stop_waiting(key)
            return False
        node = self.pipeline.graph.nodes[row.node]
        pool = node.task.pool
        if pool is not None:
            try:
                if not self.pools.admit(key, pool, now, self.book.changes.events):
                    return False
            except NotFound:
                msg = (
                    f"pool {pool!r} does not exist in the store (declare it in legato.toml [pools])"
                )
                self.book.set_task(key, S.RUNNING, started_at=now)
                self.book.set_task(key, S.FAILED, msg, error=msg, finished_at=now)
                return False
        specs.append(self._start(key, row, now))
        return True

    def _start(self, key: str, row: TaskRunRecord, now: datetime) -> AttemptSpec:
        node = self.pipeline.graph.nodes[row.node]
        run = self.book.run
        args, kwargs = plan.resolve_inputs(
            node, row.map_index, self.params, self.rows, self.children, self.item_refs,
            self._input_refs,
        )
        attempt = row.attempt + 1
        spec = AttemptSpec(
            run_id=run.id,
            pipeline=self.pipeline.name,
            node=node.id,
            task_key=key,
            map_index=row.map_index,
            attempt=attempt,
            args=args,
            kwargs=kwargs,
            params=self.params,
            partition=run.partition,
            partition_dims=self.partition_dims,
            window=self.window,
            result_key=f"{self._folder}/{key}",
            log_path=self._log_path(key, attempt),
            timeout=node.task.timeout,
            store_items=key in self.items_needed,
            in_process=node.task.in_process,
            max_log_bytes=self.max_log_bytes,
            code_version=self.pipeline.code_version,
            secrets=self.secrets,
            resources=self.resources if _opens_resources(node) else None,
            resource_args=node.resources,
            related=(
                resolve_related(node.task, self.pipeline, self.rows, run.partition, self.store)
                if node.task.checks else ()
            ),
            traceparent=None if self.span is None else self.span.start_attempt(key, attempt, now),
        )
        self.book.set_task(
            key,
            S.RUNNING,
            f"attempt {attempt}",
            attempt=attempt,
            started_at=now,
            finished_at=None,
            next_attempt_at=None,
            error=None,
        )
        if node.task.timeout is not None:
            self.deadlines[key] = now + timedelta(seconds=node.task.timeout)
        return spec

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
            if _streak(self._past[key]) < MAX_INTERRUPTIONS:
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

    # -- the steps -----------------------------------------------------------------------

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


def _streak(outcomes: Sequence[str]) -> int:
    """How many of the last ``outcomes`` in a row are "interrupted"."""
    count = 0
    for outcome in reversed(outcomes):
        if outcome != "interrupted":
            break
        count += 1
    return count


def _opens_resources(node: Node) -> bool:
    """Whether an attempt of ``node`` may open resources: a parameter, the context or a
    check (``sql(resource=)``) asks for one."""
    task = node.task
    return bool(node.resources or task.context_arg or any(
        c.args.get("resource") for c in task.checks))


def _free_attempts(outcomes: Sequence[str]) -> int:
    """Attempts that do not count against the retry policy: in each streak of interrupted
    ones, the first MAX_INTERRUPTIONS - 1 (the task was stopped, it did not fail)."""
    free = streak = 0
    for outcome in outcomes:
        streak = streak + 1 if outcome == "interrupted" else 0
        if 0 < streak < MAX_INTERRUPTIONS:
            free += 1
    return free


def _partition_of(
    pipeline: Pipeline, key: str | None
) -> tuple[tuple[tuple[str, str], ...], tuple[datetime, datetime] | None]:
    """The parts and time window a task's context shows for the run's partition."""
    parts = pipeline.automation.partitions
    if parts is None or key is None:
        return (), None
    try:
        found = parts.get(key)
    except ValueError:
        return (), None  # a key from before the partitions changed: tasks still get the key
    window = None
    if found.start is not None and found.end is not None:
        window = (found.start, found.end)
    return tuple(found.dims.items()), window


def _sealed_params(
    pipeline: Pipeline, stored: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """``params`` with each secret param sealed in the store (it reads ``****`` in the run's
    params) replaced by a placeholder: only the worker running a task opens the value."""
    for name, spec in pipeline.params.items():
        if spec.secret and stored.get(name) == MASKED:
            params[name] = SealedParam(name)
    return params
