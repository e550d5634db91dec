"""Launch, drive, re-run, resume and cancel runs of a project's pipelines."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.clock import Clock, system_clock
from legato.config import ProjectConfig, load_config
from legato.definitions.errors import ParamError
from legato.definitions.pipeline import Pipeline
from legato.domain.states import RunState, TaskState
from legato.engine import plan
from legato.loader import Project, load_project
from legato.services.errors import Conflict, NotFoundError, ServiceError, UnknownPipeline

if TYPE_CHECKING:
    from legato.domain.records import AttemptRecord, NewTriggerEvent, RunRecord, TaskRunRecord
    from legato.engine.driver import ProgressCallback
    from legato.executors.base import Executor
    from legato.store.store import Store


@dataclass(frozen=True)
class LogEntry:
    """One attempt's log: where it is and what it holds."""

    task_key: str
    attempt: int
    outcome: str  # "running" for the attempt in progress
    path: Path

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


class Workspace:
    """A project with its store and executor: what every front end works through.

    The store and the executor start on first use, in the order that keeps start-up fast:
    the executor forks its workers before the store's libraries are imported.
    """

    def __init__(self, project_dir: Path | str, *, clock: Clock = system_clock) -> None:
        self.config: ProjectConfig = load_config(Path(project_dir))
        self.clock = clock
        self._project: Project | None = None
        self._store: Store | None = None
        self._executor: Executor | None = None
        self._location_saved = False
        self._pools_synced = False
        self._last_position = 0

    # -- parts -------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = load_project(self.config.root)
        return self._project

    @property
    def store(self) -> Store:
        if self._store is None:
            from legato.store.store import Store

            self._store = Store.open(self.config.database_url)
        return self._store

    def executor(self) -> Executor:
        """The project's executor (local, or Dask), started with its pipelines loaded."""
        if self._executor is None and self.config.executor == "dask":
            # `distributed` is an optional dependency, imported only for this kind.
            from legato.config import ConfigError
            from legato.executors.pool import ExecutorError

            try:
                from legato.executors.dask import DaskExecutor
            except ImportError as exc:
                if exc.name not in ("dask", "distributed", "cloudpickle"):
                    raise
                raise ConfigError(
                    '[executor] kind "dask" needs the distributed package: '
                    'pip install "legato[dask]"'
                ) from None
            dask_ex = DaskExecutor(
                address=self.config.dask_address,
                workers=self.config.workers,
                results=self.config.results_url,
                project_root=self.config.root,
            )
            try:
                dask_ex.start(self.project.pipelines)
            except ExecutorError as exc:  # the scheduler is unreachable: one line for users
                raise ConfigError(
                    f"{exc} (set by [executor] address or LEGATO_DASK_ADDRESS)"
                ) from None
            self._executor = dask_ex
        if self._executor is None:
            from legato.executors.local import LocalExecutor
            from legato.results.store import ResultStore

            ex = LocalExecutor(
                workers=self.config.workers,
                results=ResultStore(self.config.results_url),
                mode="thread" if self.config.mode == "thread" else "process",
                memory_limit_mb=self.config.memory_limit_mb,
            )
            # The workers are forked while this process goes on importing the store.
            ex.start(self.project.pipelines, wait=False)
            self._executor = ex
        return self._executor

    def close(self) -> None:
        """Stop workers and close the store."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pipelines ---------------------------------------------------------------------

    def save_location(self) -> None:
        """Record in the store what loading the project found (pipelines, import errors)."""
        from legato.domain.records import CodeLocationRecord

        project = self.project
        self.store.save_code_location(
            CodeLocationRecord(
                name=self.config.name,
                root=str(self.config.root),
                loaded_at=self.clock(),
                pipelines={n: p.code_version for n, p in sorted(project.pipelines.items())},
                errors=[
                    {"module": e.module, "message": e.message, "traceback": e.traceback}
                    for e in project.errors
                ],
            )
        )
        self._location_saved = True

    def sync_pools(self) -> None:
        """Make the store's pools those of legato.toml (once per workspace)."""
        if not self._pools_synced:
            self.store.sync_pools(self.config.pools)
            self._pools_synced = True

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``, or UnknownPipeline naming close matches."""
        found = self.project.pipelines.get(name)
        if found is not None:
            return found
        names = sorted(self.project.pipelines)
        close = difflib.get_close_matches(name, names, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f" (pipelines: {', '.join(names) or 'none'})"
        )
        broken = [e.module for e in self.project.errors]
        if broken:
            hint += f"; modules that failed to load: {', '.join(broken)}"
        raise UnknownPipeline(f"no pipeline named {name!r} in {self.config.root}{hint}")

    # -- runs --------------------------------------------------------------------------

    def create_run(
        self,
        pipeline_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        partition: str | None = None,
        from_text: bool = False,
        run_key: str | None = None,
        origin: str = "manual",
        priority: int | None = None,
        backfill_id: str | None = None,
        trigger_events: Sequence[NewTriggerEvent] = (),
    ) -> RunRecord:
        """Record a new queued run (nothing runs yet).

        ``run_key`` makes creation idempotent: a second run with the same key raises
        DuplicateRun (from ``legato.domain.records``) carrying the first. ``priority`` defaults
        to the pipeline's.
        """
        from dataclasses import replace

        from legato.domain.ids import new_run_id
        from legato.domain.records import RunRecord

        pipe = self.pipeline(pipeline_name)
        try:
            values = pipe.params_to_json(pipe.validate_params(params or {}, from_text=from_text))
        except ParamError as exc:
            raise ServiceError(str(exc), exc.field) from None
        partition = self.check_partition(pipe, partition)
        now = self.clock()
        self._save_snapshot(pipe)
        if not self._location_saved:
            self.save_location()
        run = RunRecord(
            id=new_run_id(now),
            pipeline=pipe.name,
            state=RunState.QUEUED,
            params=values,
            partition=partition,
            code_version=pipe.code_version,
            created_at=now,
            run_key=run_key,
            priority=pipe.automation.priority if priority is None else priority,
            queue_position=self._next_position(now),
            origin=origin,
            backfill_id=backfill_id,
        )
        rows = plan.initial_task_runs(pipe, run.id)
        events = [replace(e, run_id=run.id) for e in trigger_events]
        try:
            return self.store.create_run(run, rows, plan.creation_events(rows, now), events)
        except TypeError as exc:  # params that JSON cannot hold
            raise ServiceError(f"pipeline {pipe.name!r}: params cannot be stored: {exc}") from None

    def _next_position(self, now: datetime) -> int:
        # Creation order, even for runs made within one microsecond (a backfill batch).
        pos = max(int(now.timestamp() * 1_000_000), self._last_position + 1)
        self._last_position = pos
        return pos

    @staticmethod
    def check_partition(pipe: Pipeline, partition: str | None) -> str | None:
        """The normalised partition key; ServiceError when the pipeline has no such partition."""
        parts = pipe.automation.partitions
        if parts is None or partition is None:
            return partition
        try:
            return parts.get(partition).key
        except ValueError as exc:
            raise ServiceError(f"pipeline {pipe.name!r}: partition: {exc}", "partition") from None

    def _save_snapshot(self, pipe: Pipeline) -> None:
        self.store.save_snapshot(pipe.name, pipe.code_version, pipe.snapshot(), self.clock())

    def execute(
        self, run_id: str, *, on_progress: ProgressCallback | None = None, wait: bool = False
    ) -> RunRecord:
        """Take the run's lease and drive it to its end in this process (see RunDriving)."""
        from legato.services.driving import RunDriving

        return RunDriving(self).execute(run_id, on_progress=on_progress, wait=wait)

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
        self.pipeline(pipeline_name)
        self.executor()  # fork workers before the store's imports (see class docstring)
        run = self.create_run(pipeline_name, params, partition=partition, from_text=from_text)
        if on_created is not None:
            on_created(run)
        return self.execute(run.id, on_progress=on_progress)

    def resumable(self) -> list[RunRecord]:
        """Runs that were queued or running and that no live driver holds."""
        from legato.services.driving import RunDriving

        return RunDriving(self).resumable()

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: its driver stops it, or, when nobody drives it, it is stopped here."""
        from legato.services.driving import RunDriving

        return RunDriving(self).cancel(run_id)

    # -- re-runs -----------------------------------------------------------------------

    def rerun(self, run_id: str, *, task: str | None = None) -> RunRecord:
        """A new run linked to ``run_id`` that reuses its stored results.

        Without ``task``: only failed (or never finished) tasks and their downstream run.
        With ``task``: that task and its downstream run; the rest is reused.
        """
        from legato.domain.ids import new_run_id
        from legato.domain.records import RunRecord

        old = self.store.find_run(run_id)
        if not old.state.finished:
            raise Conflict(f"run {old.id} is {old.state}; re-run it once it has finished")
        pipe = self.pipeline(old.pipeline)
        graph = pipe.graph
        old_rows = {r.task_key: r for r in self.store.get_task_runs(old.id)}

        def ok(node: str) -> bool:
            row = old_rows.get(node)
            return row is not None and row.state == TaskState.SUCCEEDED

        if task is not None:
            if task not in graph.nodes:
                raise NotFoundError(
                    f"pipeline {pipe.name!r} has no task {task!r} (tasks: {', '.join(graph.nodes)})"
                )
            redo = graph.descendants({task})
            needed = set().union(*(graph.ancestors(n) for n in redo)) - redo
            missing = sorted(n for n in needed if not ok(n))
            if missing:
                raise Conflict(
                    f"cannot re-run {task!r}: its upstream {missing[0]!r} "
                    f"has no result in run {old.id}"
                )
            kind = "task"
        else:
            redo = graph.descendants({n for n in graph.nodes if not ok(n)})
            if not redo:
                raise Conflict(f"run {old.id} has no failed task to re-run")
            kind = "from_failure"
        now = self.clock()
        new_id = new_run_id(now)
        rows = _rerun_rows(pipe, old, old_rows, redo, new_id)
        self._save_snapshot(pipe)
        run = RunRecord(
            id=new_id,
            pipeline=pipe.name,
            state=RunState.QUEUED,
            params=dict(old.params),
            partition=old.partition,
            code_version=pipe.code_version,
            created_at=now,
            parent_run_id=old.id,
            rerun_kind=kind,
        )
        return self.store.create_run(run, rows, plan.creation_events(rows, now))

    # -- reading -----------------------------------------------------------------------

    def find_run(self, run_id: str) -> RunRecord:
        return self.store.find_run(run_id)

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        return self.store.get_task_runs(run_id)

    def attempts(self, run_id: str, task_key: str | None = None) -> list[AttemptRecord]:
        return self.store.get_attempts(run_id, task_key)

    def logs(self, run_id: str, task_key: str | None = None) -> list[LogEntry]:
        """Every attempt's log of a run (or of one task), oldest first, the running one last."""
        run = self.store.find_run(run_id)
        rows = {r.task_key: r for r in self.store.get_task_runs(run.id)}
        if task_key is not None and task_key not in rows:
            raise NotFoundError(f"run {run.id} has no task {task_key!r}")
        entries = [
            LogEntry(
                a.task_key,
                a.number,
                a.outcome,
                Path(a.log_path) if a.log_path else self._log_path(run.id, a.task_key, a.number),
            )
            for a in self.store.get_attempts(run.id, task_key)
        ]
        for row in rows.values():
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
                        self._log_path(run.id, row.task_key, row.attempt),
                    )
                )
        return entries

    def _log_path(self, run_id: str, task_key: str, attempt: int) -> Path:
        return Path(plan.log_path(self.config.logs_dir, run_id, task_key, attempt))


def _rerun_rows(
    pipe: Pipeline, old: RunRecord, old_rows: dict[str, TaskRunRecord], redo: set[str], new_id: str
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
            if node.mapped and all(u not in redo for u in node.upstream):
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


__all__ = ["LogEntry", "Workspace"]
