"""Runs: record, launch, drive here, re-run, resume, cancel, and read them with their logs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.definitions.pipeline import Pipeline
from legato.domain.states import RunState, TaskState
from legato.engine import plan
from legato.security.masking import Masker
from legato.services import pruned_results
from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.run_creation import create_run, record_run
from legato.services.secrets_service import (
    hide_secret_params,
    run_masker,
    seal_params,
)
from legato.services.service_errors import Conflict, NotFoundError
from legato.store.retention_store import LOGS_PRUNED, RESULTS_PRUNED

if TYPE_CHECKING:
    from legato.domain.records import (
        AttemptRecord,
        EventRecord,
        RunRecord,
        TaskRunRecord,
    )
    from legato.engine.driver import ProgressCallback
    from legato.services.workspace import Workspace


@dataclass(frozen=True)
class LogEntry:
    """One attempt's log: where it is and what it holds."""

    task_key: str
    attempt: int
    outcome: str  # "running" for the attempt in progress
    path: Path
    note: str | None = None  # how the log was cut (a size cap, a full volume), if it was
    #: The secret values the run read, masked in whatever is shown of the log.
    mask: Masker = field(default_factory=Masker, repr=False)

    def text(self) -> str:
        """The log's text, secrets masked."""
        try:
            return self.mask.mask(self.path.read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return ""


class Runs(Service):
    """Runs of a workspace's pipelines, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    def _for_audit(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return hide_secret_params(self.ws, args, kwargs)

    @action("runs.create", command=True)
    def create_run(
        self,
        pipeline_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        partition: str | None = None,
        from_text: bool = False,
        priority: int | None = None,
    ) -> RunRecord:
        """Record a new queued run (nothing runs yet); a daemon, or ``execute``, drives it."""
        self._sight().check(pipeline_name)
        return record_run(
            self.ws,
            pipeline_name,
            params,
            partition=partition,
            from_text=from_text,
            priority=priority,
        )[0]

    @action("runs.execute", command=True)
    def execute(
        self, run_id: str, *, on_progress: ProgressCallback | None = None, wait: bool = False
    ) -> RunRecord:
        """Take the run's lease and drive it to its end in this process (see RunDriving).

        With ``wait``, wait for a dead driver's lease to run out first (``legato resume``).
        """
        from legato.services.driving import RunDriving

        if not self._sight().whole:
            run_id = self.find_run(run_id).id
        return RunDriving(self.ws).execute(run_id, on_progress=on_progress, wait=wait)

    @action("runs.launch", command=True)
    def run_pipeline(
        self,
        pipeline_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        partition: str | None = None,
        from_text: bool = False,
        on_created: Callable[[RunRecord], None] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> RunRecord:
        """Create a run and drive it here; returns the finished run."""
        from legato.services.driving import RunDriving

        self._sight().check(pipeline_name)
        self.ws.pipeline(pipeline_name)
        self.ws.executor()  # fork workers before the store's imports (see Workspace)
        run, rows = record_run(
            self.ws, pipeline_name, params, partition=partition, from_text=from_text
        )
        if on_created is not None:
            on_created(run)
        return RunDriving(self.ws).execute(run.id, on_progress=on_progress, task_runs=rows)

    @action("runs.read")
    def resumable(self) -> list[RunRecord]:
        """Runs that were queued or running and that no live driver holds."""
        from legato.services.driving import RunDriving

        return self._sight().keep(RunDriving(self.ws).resumable(), lambda r: r.pipeline)

    @action("runs.cancel", command=True)
    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: its driver stops it, or, when nobody drives it, it is stopped here."""
        from legato.services.driving import RunDriving

        if not self._sight().whole:
            run_id = self.find_run(run_id).id
        return RunDriving(self.ws).cancel(run_id)

    # -- re-runs -----------------------------------------------------------------------

    @action("runs.rerun", command=True)
    def rerun(self, run_id: str, *, task: str | None = None) -> RunRecord:
        """A new run linked to ``run_id`` that reuses its stored results.

        Without ``task``: only failed (or never finished) tasks and their downstream run.
        With ``task``: that task and its downstream run; the rest is reused.
        """
        from legato.domain.ids import new_run_id
        from legato.domain.records import RunRecord

        ws = self.ws
        ws.refresh()  # "fix the code, then re-run": the re-run runs the fix
        old = self.find_run(run_id)
        if not old.state.finished:
            raise Conflict(f"run {old.id} is {old.state}; re-run it once it has finished")
        pipe = ws.pipeline(old.pipeline)
        graph = pipe.graph
        old_list = ws.store.runs.get_task_runs(old.id)
        old_rows = {r.task_key: r for r in old_list}
        # Results removed by retention cannot be reused: those tasks run again.
        gone = pruned_results.gone_nodes(ws, old_list)

        def ok(node: str) -> bool:
            row = old_rows.get(node)
            return row is not None and row.state == TaskState.SUCCEEDED

        if task is not None:
            if task not in graph.nodes:
                raise NotFoundError(
                    f"pipeline {pipe.name!r} has no task {task!r} (tasks: {', '.join(graph.nodes)})"
                )
            asked = graph.descendants({task})
            redo = pruned_results.with_gone_upstream(graph, asked, gone)
            needed = set().union(*(graph.ancestors(n) for n in redo)) - redo
            missing = sorted(n for n in needed if not ok(n))
            if missing:
                raise Conflict(
                    f"cannot re-run {task!r}: its upstream {missing[0]!r} "
                    f"has no result in run {old.id}"
                )
            kind = "task"
        else:
            asked = graph.descendants({n for n in graph.nodes if not ok(n)})
            if not asked:
                raise Conflict(f"run {old.id} has no failed task to re-run")
            redo = pruned_results.with_gone_upstream(graph, asked, gone)
            kind = "from_failure"
        now = ws.clock()
        new_id = new_run_id(now)
        # The task named is run again in full: a mapped one keeps none of its elements, nor
        # does one whose elements' results are gone.
        fresh = ({task} if task is not None else set()) | gone
        rows = _rerun_rows(pipe, old, old_rows, redo, new_id, fresh)
        ws.save_snapshot(pipe)
        params = dict(old.params)
        seal_params(
            ws, pipe, params, f"run/{new_id}", by=str(self.actor), copy_from=f"run/{old.id}"
        )
        run = RunRecord(
            id=new_id,
            pipeline=pipe.name,
            state=RunState.QUEUED,
            params=params,
            partition=old.partition,
            code_version=pipe.code_version,
            created_at=now,
            parent_run_id=old.id,
            rerun_kind=kind,
        )
        return create_run(ws, run, rows, notes=pruned_results.rerun_note(old.id, redo - asked))

    # -- reading -----------------------------------------------------------------------

    @action("runs.read")
    def find_run(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it (NotFound, Ambiguous), among
        those the actor sees."""
        return self.ws.store.runs.find_run(run_id, pipelines=self._sight().pipelines())

    @action("runs.read")
    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """The run's task runs, in graph order (see ``Workspace.in_graph_order``)."""
        from legato.domain.records import NotFound

        try:
            run = self.ws.store.runs.get_run(run_id)
        except NotFound:
            return self.ws.store.runs.get_task_runs(run_id)
        if not self._sight().covers(run.pipeline):
            return []  # what a run that does not exist has
        rows = self.ws.store.runs.get_task_runs(run_id)
        return self.ws.in_graph_order(self.ws.snapshot_of(run), rows)

    @action("runs.read")
    def task_run(self, run_id: str, task_key: str) -> TaskRunRecord:
        """One task run of a run (NotFound)."""
        from legato.domain.records import NotFound

        row = self.ws.store.runs.get_task_run(run_id, task_key)
        sight = self._sight()
        if not sight.whole:
            sight.run(
                self.ws.store.runs.get_run(run_id),
                lambda: NotFound(f"run {run_id!r} has no task {task_key!r}"),
            )
        return row

    @action("results.read")
    def output(self, run_id: str, task_key: str) -> Any:
        """The value a task run returned, read back from the result store (None when it
        returned None). NotFoundError when the run has no such task or it stored no result
        (it has not succeeded). Not a viewer's: results are the pipelines' data."""
        from legato.domain.records import NotFound
        from legato.results.result_store import ResultStore

        run = self.find_run(run_id)
        try:
            row = self.ws.store.runs.get_task_run(run.id, task_key)
        except NotFound:
            raise NotFoundError(f"run {run.id} has no task {task_key!r}") from None
        if row.state != TaskState.SUCCEEDED:
            raise NotFoundError(f"task {task_key!r} of run {run.id} has no result ({row.state})")
        if self.ws.store.retention.results_gone({pruned_results.owner(row)}):
            raise NotFoundError(
                f"task {task_key!r} of run {run.id}: {pruned_results.RESULTS_PRUNED_NOTE}"
            )
        return ResultStore(self.ws.config.results_url).get(plan.ref_of(row))

    @action("runs.read")
    def attempts(self, run_id: str, task_key: str | None = None) -> list[AttemptRecord]:
        """The run's finished attempts (of one task), oldest first."""
        found = self.ws.store.runs.get_attempts(run_id, task_key)
        sight = self._sight()
        hidden = found and not sight.whole
        if hidden and not sight.covers(self.ws.store.runs.get_run(run_id).pipeline):
            return []  # what a run that does not exist has
        return found

    @action("runs.read")
    def pruned(self, run_id: str) -> frozenset[str]:
        """What retention removed of a run that stays: "logs", "results", both or neither."""
        marks = self.ws.store.retention.pruned_files(self.find_run(run_id).id)
        return frozenset(
            name
            for name, kind in (("logs", LOGS_PRUNED), ("results", RESULTS_PRUNED))
            if kind in marks
        )

    @action("runs.read")
    def summary(self) -> dict[str, tuple[int, RunRecord]]:
        """Per pipeline with runs: how many runs, and the newest one."""
        lines = self._sight().keep(self.ws.store.browse.pipelines_summary(), lambda x: x[0])
        return {name: (n, last) for name, n, last in lines}

    @action("logs.read")
    def logs(self, run_id: str, task_key: str | None = None) -> list[LogEntry]:
        """Every attempt's log of a run (or of one task), oldest first, the running one last."""
        from legato.domain.records import NotFound

        store = self.ws.store
        run = self.find_run(run_id)
        if task_key is None:
            rows = store.runs.get_task_runs(run.id)
        else:  # one row, not a 10,000-task run's every row
            try:
                rows = [store.runs.get_task_run(run.id, task_key)]
            except NotFound:
                raise NotFoundError(f"run {run.id} has no task {task_key!r}") from None
        notes = _log_notes(store.runs.get_events(run.id, kind="log"), task_key)
        pruned = LOGS_PRUNED in store.retention.pruned_files(run.id)
        mask = run_masker(self.ws, run)
        entries = [
            LogEntry(
                a.task_key,
                a.number,
                a.outcome,
                Path(a.log_path) if a.log_path else self.ws.log_path(run.id, a.task_key, a.number),
                pruned_results.LOGS_PRUNED_NOTE if pruned else notes.get((a.task_key, a.number)),
                mask,
            )
            for a in store.runs.get_attempts(run.id, task_key)
        ]
        for row in rows:
            if (
                row.state == TaskState.RUNNING
                and (task_key is None or row.task_key == task_key)
                and row.attempt
            ):
                entries.append(
                    LogEntry(
                        row.task_key,
                        row.attempt,
                        "running",
                        self.ws.log_path(run.id, row.task_key, row.attempt),
                        mask=mask,
                    )
                )
        return entries


def _log_notes(events: Sequence[EventRecord], task_key: str | None) -> dict[tuple[str, int], str]:
    """(task key, attempt) -> how that attempt's log was cut, from the run's "log" events."""
    notes: dict[tuple[str, int], str] = {}
    for e in events:
        if e.kind != "log" or e.task_key is None or not e.message:
            continue
        if task_key is not None and e.task_key != task_key:
            continue
        number, _, note = e.message.partition(": ")
        if number.startswith("attempt ") and number[8:].isdigit():
            notes[(e.task_key, int(number[8:]))] = note
    return notes


def _rerun_rows(
    pipe: Pipeline,
    old: RunRecord,
    old_rows: dict[str, TaskRunRecord],
    redo: set[str],
    new_id: str,
    fresh: set[str],
) -> list[TaskRunRecord]:
    from dataclasses import replace

    from legato.domain.records import TaskRunRecord

    rows: list[TaskRunRecord] = []
    by_node: dict[str, list[TaskRunRecord]] = {}
    for r in old_rows.values():
        if r.map_index is not None:
            by_node.setdefault(r.node, []).append(r)

    def reused(r: TaskRunRecord) -> TaskRunRecord:
        return replace(r, run_id=new_id, reused_from=r.reused_from or old.id, worker=None)

    for node in pipe.graph.nodes.values():
        old_row = old_rows.get(node.id)
        if node.id not in redo and old_row is not None and old_row.state == TaskState.SUCCEEDED:
            rows.append(reused(old_row))
            rows.extend(reused(c) for c in by_node.get(node.id, []))
            continue
        if node.id in redo:
            rows.append(TaskRunRecord(new_id, node.id, node.id, None, TaskState.PENDING))
            if node.mapped and node.id not in fresh and all(u not in redo for u in node.upstream):
                # Same inputs as before: elements that succeeded keep their results.
                rows.extend(
                    reused(c) for c in by_node.get(node.id, []) if c.state == TaskState.SUCCEEDED
                )
            continue
        rows.append(
            TaskRunRecord(
                new_id,
                node.id,
                node.id,
                None,
                TaskState.SKIPPED,
                error=f"not re-run; it did not succeed in run {old.id}",
            )
        )
    return rows


__all__ = ["LogEntry", "Runs"]
