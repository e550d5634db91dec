"""Drives one run to its end: readiness, dispatch, outcomes, retries, timeouts, cancel, resume.

Every state change of a step is written to the store in one transaction (``Store.apply``)
before the attempts it starts are submitted, so a driver killed at any point leaves a store
from which another driver can carry on. The loop sleeps only inside ``Executor.wait``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from legato.clock import Clock, system_clock
from legato.definitions.pipeline import Pipeline
from legato.engine import plan
from legato.engine.conditions import ConditionChecks
from legato.engine.states import (
    RunState,
    TaskState,
    check_run_transition,
    check_task_transition,
)
from legato.executors.base import AttemptOutcome, AttemptSpec, Executor, ResultRef
from legato.store.records import (
    AttemptRecord,
    Changes,
    NewEvent,
    RunRecord,
    TaskRunRecord,
)
from legato.store.store import Store

S = TaskState
_FAILED_UPSTREAM = frozenset({S.FAILED, S.UPSTREAM_FAILED, S.CANCELED})
# An attempt that ended this way says nothing about the task's own code: always retryable.
_INFRA_OUTCOMES = frozenset({"timeout", "crashed", "interrupted"})

ProgressCallback = Callable[["RunDriver", list[TaskRunRecord]], None]


class RunDriver:
    """Holds a run's lease and moves it forward until it is finished.

    ``owner`` must already hold the lease (see ``services.runs``). ``cancel_poll`` is how
    often the store is asked whether someone requested a cancel: SQLite offers no
    notifications, so this is the one deliberate poll in the loop.
    """

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        executor: Executor,
        run: RunRecord,
        *,
        owner: str,
        logs_dir: Path,
        clock: Clock = system_clock,
        lease_ttl: float = 15.0,
        cancel_poll: float = 1.0,
        on_progress: ProgressCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.executor = executor
        self.run = run
        self.owner = owner
        self.logs_dir = logs_dir
        self._logs_dir = str(logs_dir)
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.cancel_poll = cancel_poll
        self.on_progress = on_progress
        self.rng = rng or random.Random()
        # The store keeps params as JSON; tasks get them as the pipeline's type hints say.
        self.params = pipeline.validate_params(run.params)
        self.rows: dict[str, TaskRunRecord] = {}
        self.children: dict[str, list[str]] = {}  # mapped node -> element keys in order
        self.item_refs: dict[str, tuple[ResultRef, ...]] = {}
        self.items_needed = plan.items_needed(pipeline)
        self.waiting_on: dict[str, int] = {}  # pending key -> unfinished upstream count
        self.queue: deque[str] = deque()
        self.deadlines: dict[str, datetime] = {}  # running key -> timeout
        self.conditions = ConditionChecks()
        self.changes = self._new_changes()
        self.last_flush = self.clock()
        self.last_cancel_check = self.clock()
        self.unfinished = 0
        self.retrying: set[str] = set()
        self.open_children: dict[str, int] = {}  # mapped node -> unfinished elements
        self._settled: deque[str] = deque()
        self._propagating = False
        self._canceling = False

    # -- bookkeeping -------------------------------------------------------------------

    def _new_changes(self) -> Changes:
        return Changes(
            run_id=self.run.id,
            owner=self.owner,
            lease_expires_at=self.clock() + timedelta(seconds=self.lease_ttl),
        )

    def _set_task(
        self, key: str, state: TaskState, message: str | None = None, **fields: object
    ) -> None:
        old = self.rows[key]
        if old.state != state:
            check_task_transition(old.state, state)
        new = replace(old, state=state, **fields)  # type: ignore[arg-type]
        self.rows[key] = new
        self.changes.task_runs.append(new)
        if old.state != state:
            self.changes.events.append(
                NewEvent(
                    self.run.id,
                    key,
                    "task_state",
                    str(old.state),
                    str(state),
                    self.clock(),
                    message,
                )
            )
            if state == S.UP_FOR_RETRY:
                self.retrying.add(key)
            else:
                self.retrying.discard(key)
            if state.finished:
                self.unfinished -= 1
                self._settled.append(key)
                if not self._propagating:
                    # Iterative, not recursive: a failure can cascade down a long chain.
                    self._propagating = True
                    try:
                        while self._settled:
                            self._finished(self._settled.popleft())
                    finally:
                        self._propagating = False

    def _set_run(self, state: RunState, **fields: object) -> None:
        old = self.run
        if old.state != state:
            check_run_transition(old.state, state)
        self.run = replace(old, state=state, **fields)  # type: ignore[arg-type]
        self.changes.run = self.run
        if old.state != state:
            self.changes.events.append(
                NewEvent(
                    self.run.id,
                    None,
                    "run_state",
                    str(old.state),
                    str(state),
                    self.clock(),
                    self.run.error,
                )
            )

    def flush(self) -> None:
        """Write this step's changes (and extend the lease) in one transaction."""
        self.changes.lease_expires_at = self.clock() + timedelta(seconds=self.lease_ttl)
        # A row changed twice in one step is written once, as it is now; a row made in this
        # step is inserted as it is now.
        if self.changes.task_runs:
            latest = {r.task_key: r for r in self.changes.task_runs}
            self.changes.new_task_runs = [
                latest.pop(r.task_key, r) for r in self.changes.new_task_runs
            ]
            self.changes.task_runs = list(latest.values())
        self.store.apply(self.changes)
        changed = [*self.changes.new_task_runs, *self.changes.task_runs]
        self.changes = self._new_changes()
        self.last_flush = self.clock()
        if self.on_progress is not None:
            self.on_progress(self, changed)

    # -- start and resume --------------------------------------------------------------

    def _load(self) -> None:
        for row in self.store.get_task_runs(self.run.id):
            self.rows[row.task_key] = row
            if row.map_index is not None:
                self.children.setdefault(row.node, []).append(row.task_key)
        for mapped_node, keys in self.children.items():
            keys.sort(key=lambda k: self.rows[k].map_index or 0)
            self.open_children[mapped_node] = sum(
                1 for k in keys if not self.rows[k].state.finished
            )
        self.unfinished = sum(1 for r in self.rows.values() if not r.state.finished)
        now = self.clock()
        for key, row in list(self.rows.items()):
            if row.state == S.UP_FOR_RETRY:
                self.retrying.add(key)
            if row.state == S.RUNNING and row.map_index is None and row.node in self.children:
                continue  # an expanded mapped node: its elements carry the work
            if row.state == S.RUNNING:
                self._record_attempt(
                    row,
                    "interrupted",
                    "interrupted: the process driving this run stopped",
                    None,
                    now,
                )
                self._after_failure(
                    key,
                    "interrupted",
                    retryable=True,
                    error="interrupted: the process driving this run stopped",
                )
            elif row.state == S.QUEUED:
                self.queue.append(key)
        for node in self.pipeline.graph.nodes.values():
            row = self.rows[node.id]
            if row.state == S.PENDING:
                self.waiting_on[node.id] = sum(
                    1 for up in node.upstream if not self.rows[up].state.finished
                )
        for key, count in list(self.waiting_on.items()):
            if count == 0:
                self._evaluate(key)
        for node_id in list(self.children):
            if self.rows[node_id].state == S.RUNNING and self.open_children[node_id] == 0:
                self._finish_mapped(node_id)

    # -- readiness ---------------------------------------------------------------------

    def _finished(self, key: str) -> None:
        row = self.rows[key]
        if row.map_index is not None:
            self.open_children[row.node] -= 1
            if self.open_children[row.node] == 0 and self.rows[row.node].state == S.RUNNING:
                self._finish_mapped(row.node)
            return
        for child in self.pipeline.graph.downstream.get(key, ()):
            if child in self.waiting_on:
                self.waiting_on[child] -= 1
                if self.waiting_on[child] == 0:
                    self._evaluate(child)

    def _evaluate(self, key: str) -> None:
        """All upstream of ``key`` are finished: decide whether it runs."""
        del self.waiting_on[key]
        node = self.pipeline.graph.nodes[key]
        ups = [self.rows[u] for u in node.upstream]
        failed = [u.task_key for u in ups if u.state in _FAILED_UPSTREAM]
        if self._canceling:
            self._set_task(key, S.CANCELED, "run canceled", finished_at=self.clock())
        elif failed:
            self._set_task(
                key,
                S.UPSTREAM_FAILED,
                f"upstream failed: {', '.join(failed)}",
                finished_at=self.clock(),
            )
        elif any(u.state == S.SKIPPED for u in ups):
            self._set_task(key, S.SKIPPED, "upstream skipped", finished_at=self.clock())
        elif node.mapped:
            self._expand(key)
        else:
            self._set_task(key, S.QUEUED)
            self.queue.append(key)

    def _expand(self, node_id: str) -> None:
        node = self.pipeline.graph.nodes[node_id]
        try:
            count = plan.map_count(node, self.params, self.rows, self.children)
        except plan.MapError as exc:
            self._set_task(node_id, S.RUNNING, started_at=self.clock())
            self._set_task(node_id, S.FAILED, str(exc), error=str(exc), finished_at=self.clock())
            return
        existing = self.children.setdefault(node_id, [])
        have = {self.rows[k].map_index for k in existing}
        now = self.clock()
        self._set_task(node_id, S.RUNNING, f"{count} elements", started_at=now, item_count=count)
        for i in range(count):
            if i in have:
                continue  # reused from the run this one re-runs
            key = plan.element_key(node_id, i)
            row = TaskRunRecord(self.run.id, key, node_id, i, S.QUEUED)
            self.rows[key] = row
            existing.append(key)
            self.unfinished += 1
            self.changes.new_task_runs.append(row)
            self.changes.events.append(
                NewEvent(self.run.id, key, "task_state", None, "queued", now)
            )
            self.queue.append(key)
        existing.sort(key=lambda k: self.rows[k].map_index or 0)
        self.open_children[node_id] = sum(1 for k in existing if not self.rows[k].state.finished)
        if self.open_children[node_id] == 0:
            self._finish_mapped(node_id)

    def _finish_mapped(self, node_id: str) -> None:
        keys = self.children[node_id]
        bad = [k for k in keys if self.rows[k].state in _FAILED_UPSTREAM]
        if bad:
            msg = f"{len(bad)} of {len(keys)} elements failed: {', '.join(bad[:5])}"
            self._set_task(node_id, S.FAILED, msg, error=msg, finished_at=self.clock())
        else:
            self._set_task(node_id, S.SUCCEEDED, finished_at=self.clock())

    # -- attempts ----------------------------------------------------------------------

    def _log_path(self, key: str, attempt: int) -> str:
        return plan.log_path(self._logs_dir, self.run.id, key, attempt)

    def _dispatch(self) -> list[AttemptSpec]:
        specs: list[AttemptSpec] = []
        free = self.executor.free_slots()
        now = self.clock()
        while self.queue and free > 0:
            key = self.queue.popleft()
            row = self.rows[key]
            if row.state != S.QUEUED:
                continue
            node = self.pipeline.graph.nodes[row.node]
            args, kwargs = plan.resolve_inputs(
                node, row.map_index, self.params, self.rows, self.children, self.item_refs
            )
            attempt = row.attempt + 1
            spec = AttemptSpec(
                run_id=self.run.id,
                pipeline=self.pipeline.name,
                node=node.id,
                task_key=key,
                map_index=row.map_index,
                attempt=attempt,
                args=args,
                kwargs=kwargs,
                params=self.params,
                partition=self.run.partition,
                result_key=f"{self.run.id}/{key}",
                log_path=self._log_path(key, attempt),
                timeout=node.task.timeout,
                store_items=key in self.items_needed,
                in_process=node.task.in_process,
            )
            self._set_task(
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
            specs.append(spec)
            free -= 1
        return specs

    def _record_attempt(
        self,
        row: TaskRunRecord,
        outcome: str,
        error: str | None,
        tb: str | None,
        now: datetime,
        worker: str | None = None,
    ) -> None:
        self.changes.attempts.append(
            AttemptRecord(
                run_id=self.run.id,
                task_key=row.task_key,
                number=row.attempt,
                outcome=outcome,
                started_at=row.started_at or now,
                finished_at=now,
                error=error,
                traceback=tb,
                log_path=self._log_path(row.task_key, row.attempt),
                worker=worker or row.worker,
            )
        )
        if outcome == "succeeded":
            return  # the task's own state change says it; the attempts table has the rest
        self.changes.events.append(
            NewEvent(
                self.run.id,
                row.task_key,
                "attempt",
                None,
                outcome,
                now,
                f"attempt {row.attempt}: {error}" if error else f"attempt {row.attempt}",
            )
        )

    def _on_outcome(self, out: AttemptOutcome) -> None:
        row = self.rows.get(out.task_key)
        if row is None or row.state != S.RUNNING or row.attempt != out.attempt:
            return  # a late report of an attempt already settled (killed, canceled)
        self.deadlines.pop(out.task_key, None)
        now = self.clock()
        self._record_attempt(row, out.status, out.error, out.traceback, now, out.worker)
        if out.status == "succeeded":
            result = out.result or ResultRef(None, "none")
            if out.item_refs is not None:
                self.item_refs[row.task_key] = out.item_refs
            self._set_task(
                out.task_key,
                S.SUCCEEDED,
                finished_at=now,
                result_uri=result.uri,
                result_format=result.format,
                item_count=out.item_count,
                error=None,
            )
        elif out.status == "skipped":
            self._set_task(out.task_key, S.SKIPPED, out.error, finished_at=now)
        else:
            retryable = out.retryable or out.status in _INFRA_OUTCOMES
            self._after_failure(out.task_key, out.status, retryable=retryable, error=out.error)

    def _after_failure(self, key: str, status: str, *, retryable: bool, error: str | None) -> None:
        row = self.rows[key]
        policy = self.pipeline.graph.nodes[row.node].task.retry
        now = self.clock()
        if retryable and row.attempt < policy.max_attempts:
            wait = policy.delay_before(row.attempt + 1, self.rng)
            self._set_task(
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
                why = f"{why} (after {row.attempt} attempts)"
            self._set_task(key, S.FAILED, why, finished_at=now, error=why)

    # -- retries waiting on time or on a condition -------------------------------------

    def _due_retries(self, now: datetime) -> None:
        for key in list(self.retrying):
            row = self.rows[key]
            if row.next_attempt_at is None:
                continue
            if row.next_attempt_at > now or self.conditions.checking(key):
                continue
            cond = self.pipeline.graph.nodes[row.node].task.retry.condition
            if cond is None:
                self._set_task(key, S.QUEUED, next_attempt_at=None)
                self.queue.append(key)
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
                self.changes.events.append(
                    NewEvent(
                        self.run.id, key, "condition", None, "true", now, f"{cond.label} holds"
                    )
                )
                self._set_task(key, S.QUEUED, next_attempt_at=None)
                self.queue.append(key)
                continue
            done = self.conditions.count_false(key)
            since = row.finished_at or now
            if cond.timeout is not None and (now - since).total_seconds() >= cond.timeout:
                msg = f"{row.error}; condition {cond.label} did not hold within {cond.timeout:g}s"
                self._set_task(key, S.FAILED, msg, error=msg)
                continue
            wait = cond.next_interval(done - 1)
            self._set_task(
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
        return self.store.get_run(self.run.id).cancel_requested

    def cancel(self, reason: str = "canceled by request") -> None:
        """Stop every attempt and mark what has not finished as canceled."""
        now = self.clock()
        self._canceling = True
        for key in list(self.rows):
            row = self.rows[key]
            if row.state.finished:
                continue
            if row.state == S.RUNNING and not (row.map_index is None and row.node in self.children):
                self.executor.kill(self.run.id, key, row.attempt, "canceled", reason)
                self._record_attempt(row, "canceled", reason, None, now)
            self._set_task(key, S.CANCELED, reason, finished_at=now)
        self.deadlines.clear()
        self.queue.clear()

    def _timeouts(self, now: datetime) -> None:
        for key, deadline in list(self.deadlines.items()):
            if deadline <= now:
                row = self.rows[key]
                limit = self.pipeline.graph.nodes[row.node].task.timeout
                self.executor.kill(
                    self.run.id, key, row.attempt, "timeout", f"timed out after {limit:g}s"
                )
                del self.deadlines[key]

    def _next_wait(self, now: datetime) -> float:
        horizon = [
            self.last_flush + timedelta(seconds=self.lease_ttl / 3),
            self.last_cancel_check + timedelta(seconds=self.cancel_poll),
        ]
        horizon.extend(self.deadlines.values())
        for key in self.retrying:
            at = self.rows[key].next_attempt_at
            if at is not None and not self.conditions.checking(key):
                horizon.append(at)
        wait = min((t - now).total_seconds() for t in horizon)
        if self.conditions.busy():
            wait = min(wait, 0.02)  # condition checks run in threads the executor cannot see
        return max(0.0, wait)

    # -- the loop ----------------------------------------------------------------------

    def drive(self) -> RunRecord:
        """Run until every task is finished; returns the final run record."""
        now = self.clock()
        if self.run.state == RunState.QUEUED:
            self._set_run(RunState.RUNNING, started_at=now)
        self._load()
        try:
            while True:
                now = self.clock()
                self._condition_results(now)
                self._due_retries(now)
                if self._check_cancel(now):
                    self.cancel()
                specs = self._dispatch()
                if self.unfinished == 0:
                    break
                if (
                    specs
                    or not self.changes.empty()
                    or (now - self.last_flush).total_seconds() >= self.lease_ttl / 3
                ):
                    self.flush()
                for spec in specs:
                    self.executor.submit(spec)
                outcomes = self.executor.wait(self._next_wait(self.clock()))
                for out in outcomes:
                    self._on_outcome(out)
                self._timeouts(self.clock())
            self._finish_run()
            self.flush()
        except KeyboardInterrupt:
            self._interrupted()
            raise
        finally:
            self.conditions.close()
        return self.run

    def _interrupted(self) -> None:
        # Ctrl-C on the driving process: stop what runs and record the run as canceled,
        # so that it does not wait for a resume. Best effort: if the store cannot be
        # written now, the lease expires and `legato resume` settles the run instead.
        try:
            self.cancel("canceled: the process driving the run was interrupted")
            self._finish_run()
            self.flush()
        except Exception:
            pass

    def _finish_run(self) -> None:
        states = [r.state for r in self.rows.values() if r.map_index is None]
        now = self.clock()
        if any(s == S.CANCELED for s in states):
            state, error = RunState.CANCELED, "canceled"
        elif any(s in (S.FAILED, S.UPSTREAM_FAILED) for s in states):
            failed = [r.task_key for r in self.rows.values() if r.state == S.FAILED]
            state = RunState.FAILED
            error = f"{len(failed)} task{'s' if len(failed) != 1 else ''} failed: " + ", ".join(
                failed[:10]
            )
        else:
            state, error = RunState.SUCCEEDED, None
        self._set_run(state, finished_at=now, error=error, lease_owner=None, lease_expires_at=None)

    def counts(self) -> dict[TaskState, int]:
        """How many task runs are in each state (mapped nodes count by element)."""
        out: dict[TaskState, int] = {}
        for row in self.rows.values():
            if row.map_index is None and row.node in self.children:
                continue
            out[row.state] = out.get(row.state, 0) + 1
        return out
