"""A run's rows in memory, and the batch of changes that records what happened to them.

``RunBook`` is the driver's bookkeeping: the run and task rows, the indexes kept beside them
(dispatch queue, unfinished upstream counts, open elements, waiting retries) and the
``Changes`` the next step writes. Every state change goes through ``set_task`` or
``set_run``, so the rows, the indexes, the event log and the batch always agree; a task
that finishes makes its downstream ready, skipped or failed here. Nothing here talks to the
store or the executor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import datetime
from operator import attrgetter
from typing import Any

from legato.clock import Clock
from legato.definitions.graph import Graph
from legato.domain.records import (
    AttemptRecord,
    Changes,
    NewElements,
    NewEvent,
    RunRecord,
    TaskRunRecord,
)
from legato.domain.states import RunState, TaskState, check_run_transition, check_task_transition
from legato.engine import plan

S = TaskState
_FAILED_UPSTREAM = frozenset({S.FAILED, S.UPSTREAM_FAILED, S.CANCELED})


class RunBook:
    """One run's rows as its driver last changed them, with the indexes readiness needs.

    ``changes`` is the batch being built; whoever writes it starts the next one by
    assigning a fresh ``Changes``. ``queue`` holds the keys that became queued, in order,
    for the driver to dispatch (it may hold keys that have moved on since: check the row).
    """

    def __init__(
        self,
        run: RunRecord,
        graph: Graph,
        params: Mapping[str, Any],
        clock: Clock,
        changes: Changes,
    ) -> None:
        self.run = run
        self.graph = graph
        self.params = params
        self.clock = clock
        self.changes = changes
        self.rows: dict[str, TaskRunRecord] = {}
        self.children: dict[str, list[str]] = {}  # mapped node -> element keys in order
        self.open_children: dict[str, int] = {}  # mapped node -> unfinished elements
        self.waiting_on: dict[str, int] = {}  # pending key -> unfinished upstream count
        self.queue: deque[str] = deque()
        self.retrying: set[str] = set()
        self.unfinished = 0
        # Once set, a task whose upstream finishes is canceled instead of run.
        self.canceling = False
        self._settled: deque[str] = deque()
        self._propagating = False

    # -- state changes -----------------------------------------------------------------

    def set_task(
        self, key: str, state: TaskState, message: str | None = None, **fields: object
    ) -> None:
        """Change one task run's row, recording it (and the event, if its state changed)."""
        old = self.rows[key]
        if old.state != state:
            check_task_transition(old.state, state)
        new = _changed(old, state, fields)
        self.rows[key] = new
        self.changes.task_runs.append(new)
        if old.state != state:
            # The time the change gives its row, when it gives one: the changes of a step
            # then share a few timestamps (the store converts each once).
            at = fields.get("finished_at") or fields.get("started_at") or self.clock()
            self.changes.events.append(
                NewEvent(
                    self.run.id,
                    key,
                    "task_state",
                    str(old.state),
                    str(state),
                    at,  # type: ignore[arg-type]
                    message,
                )
            )
            if state == S.UP_FOR_RETRY:
                self.retrying.add(key)
            else:
                self.retrying.discard(key)
                if state == S.QUEUED:
                    self.queue.append(key)
                elif state.finished:
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

    def set_run(self, state: RunState, **fields: object) -> None:
        """Change the run's row, recording it (and the event, if its state changed)."""
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

    def record_attempt(
        self,
        row: TaskRunRecord,
        outcome: str,
        error: str | None,
        tb: str | None,
        now: datetime,
        log_path: str,
        worker: str | None = None,
    ) -> None:
        """Record the end of the attempt ``row`` is on (before its own row changes)."""
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
                log_path=log_path,
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

    # -- start and resume --------------------------------------------------------------

    def load(self, rows: Iterable[TaskRunRecord]) -> None:
        """Take the run's stored rows; queued ones join the queue.

        Rows left running by a driver that died are the caller's to settle, between this
        and ``start``.
        """
        for row in rows:
            self.rows[row.task_key] = row
            if row.map_index is not None:
                self.children.setdefault(row.node, []).append(row.task_key)
        for mapped_node, keys in self.children.items():
            keys.sort(key=lambda k: self.rows[k].map_index or 0)
            self.open_children[mapped_node] = sum(
                1 for k in keys if not self.rows[k].state.finished
            )
        self.unfinished = sum(1 for r in self.rows.values() if not r.state.finished)
        for key, row in self.rows.items():
            if row.state == S.UP_FOR_RETRY:
                self.retrying.add(key)
            elif row.state == S.QUEUED:
                self.queue.append(key)

    def start(self) -> None:
        """Count each pending node's unfinished upstream, and settle what is ready now."""
        for node in self.graph.nodes.values():
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
        for child in self.graph.downstream.get(key, ()):
            if child in self.waiting_on:
                self.waiting_on[child] -= 1
                if self.waiting_on[child] == 0:
                    self._evaluate(child)

    def _evaluate(self, key: str) -> None:
        """All upstream of ``key`` are finished: decide whether it runs."""
        del self.waiting_on[key]
        node = self.graph.nodes[key]
        ups = [self.rows[u] for u in node.upstream]
        failed = [u.task_key for u in ups if u.state in _FAILED_UPSTREAM]
        if self.canceling:
            self.set_task(key, S.CANCELED, "run canceled", finished_at=self.clock())
        elif failed:
            self.set_task(
                key,
                S.UPSTREAM_FAILED,
                f"upstream failed: {', '.join(failed)}",
                finished_at=self.clock(),
            )
        elif any(u.state == S.SKIPPED for u in ups):
            self.set_task(key, S.SKIPPED, "upstream skipped", finished_at=self.clock())
        elif node.mapped:
            self._expand(key)
        else:
            self.set_task(key, S.QUEUED)

    def _expand(self, node_id: str) -> None:
        node = self.graph.nodes[node_id]
        try:
            count = plan.map_count(node, self.params, self.rows, self.children)
        except plan.MapError as exc:
            self.set_task(node_id, S.RUNNING, started_at=self.clock())
            self.set_task(node_id, S.FAILED, str(exc), error=str(exc), finished_at=self.clock())
            return
        existing = self.children.setdefault(node_id, [])
        have = {self.rows[k].map_index for k in existing}
        now = self.clock()
        self.set_task(node_id, S.RUNNING, f"{count} elements", started_at=now, item_count=count)
        if not existing:
            self._make_elements(node_id, count, now)
            return
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

    def _make_elements(self, node_id: str, count: int, now: datetime) -> None:
        """All the elements of a mapped node, queued: their rows here, and in the store
        made by the store itself (``NewElements``), with their "queued" events."""
        self.changes.elements.append(
            NewElements(node_id, count, now, events_before=len(self.changes.events))
        )
        run_id, rows, queue = self.run.id, self.rows, self.queue
        keys = [plan.element_key(node_id, i) for i in range(count)]
        for i, key in enumerate(keys):
            rows[key] = TaskRunRecord(run_id, key, node_id, i, S.QUEUED)
        self.children[node_id] = keys
        queue.extend(keys)
        self.unfinished += count
        self.open_children[node_id] = count
        if count == 0:
            self._finish_mapped(node_id)

    def _finish_mapped(self, node_id: str) -> None:
        keys = self.children[node_id]
        bad = [k for k in keys if self.rows[k].state in _FAILED_UPSTREAM]
        if bad:
            msg = f"{len(bad)} of {len(keys)} elements failed: {_some(bad)}"
            self.set_task(node_id, S.FAILED, msg, error=msg, finished_at=self.clock())
        else:
            self.set_task(node_id, S.SUCCEEDED, finished_at=self.clock())

    # -- summaries ---------------------------------------------------------------------

    def outcome(self) -> tuple[RunState, str | None]:
        """The state (and error) the run ends in, once no task is unfinished."""
        states = [r.state for r in self.rows.values() if r.map_index is None]
        if any(s == S.CANCELED for s in states):
            return RunState.CANCELED, "canceled"
        if any(s in (S.FAILED, S.UPSTREAM_FAILED) for s in states):
            failed = [r.task_key for r in self.rows.values() if r.state == S.FAILED]
            return RunState.FAILED, (
                f"{len(failed)} task{'s' if len(failed) != 1 else ''} failed: " + _some(failed)
            )
        return RunState.SUCCEEDED, None

    def counts(self) -> dict[TaskState, int]:
        """How many task runs are in each state (mapped nodes count by element)."""
        out: dict[TaskState, int] = {}
        for row in self.rows.values():
            if row.map_index is None and row.node in self.children:
                continue
            out[row.state] = out.get(row.state, 0) + 1
        return out


_ROW_FIELDS = tuple(f.name for f in dataclass_fields(TaskRunRecord))
_ROW_INDEX = {name: i for i, name in enumerate(_ROW_FIELDS)}
_row_values = attrgetter(*_ROW_FIELDS)
_STATE = _ROW_INDEX["state"]


def _changed(row: TaskRunRecord, state: TaskState, fields: dict[str, object]) -> TaskRunRecord:
    """``dataclasses.replace(row, state=state, **fields)``, without looking the fields up
    again for each of a map's hundred thousand rows."""
    values = list(_row_values(row))
    values[_STATE] = state
    for name, value in fields.items():
        values[_ROW_INDEX[name]] = value
    return TaskRunRecord(*values)


def _some(keys: list[str], shown: int = 10) -> str:
    """Up to ``shown`` keys, and how many more there are: a message stays short, but says
    exactly what it leaves out."""
    head = ", ".join(keys[:shown])
    return head if len(keys) <= shown else f"{head} and {len(keys) - shown} more"
