"""A project with its settings and parts: what the services share.

A ``Workspace`` is the project folder's ``legato.toml`` read, its code loaded, its store and
executor opened on first use, and the clock. It is the services' own: front ends get a
``Door`` (``Workspace.door``) and never the workspace or its store.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.clock import Clock, system_clock
from legato.config import ProjectConfig, load_config
from legato.definitions.pipeline import Pipeline
from legato.engine import plan
from legato.loader import Project, load_project
from legato.services.service_errors import ServiceError, UnknownPipeline

if TYPE_CHECKING:
    from legato.domain.records import RunRecord, TaskRunRecord
    from legato.executors.interface import Executor
    from legato.services.actor import Actor
    from legato.services.door import Door
    from legato.store.store import Store


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
        self.location_saved = False
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

            try:
                self._store = Store.open(self.config.database_url)
            except Exception as exc:
                from legato.store.db import full_error

                full = full_error(exc, self.config.database_url)
                if full is None:
                    raise
                raise full from exc
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
            from legato.results.result_store import ResultStore

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
        self.store.runs.save_code_location(
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
        self.location_saved = True

    def sync_pools(self) -> None:
        """Make the store's pools those of legato.toml (once per workspace)."""
        if not self._pools_synced:
            self.store.pools.sync_pools(self.config.pools)
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

    def next_position(self, now: datetime) -> int:
        # Creation order, even for runs made within one microsecond (a backfill batch).
        pos = max(int(now.timestamp() * 1_000_000), self._last_position + 1)
        self._last_position = pos
        return pos

    @staticmethod
    def check_partition(pipe: Pipeline, partition: str | None, now: datetime) -> str | None:
        """The normalised partition key; ServiceError when the pipeline has no such partition
        or it does not exist yet at ``now`` (its time window has not ended).

        The one check for every way a run names a partition: run, submit, the API, backfills.
        """
        parts = pipe.automation.partitions
        if parts is None or partition is None:
            return partition
        try:
            return parts.existing(partition, now).key
        except ValueError as exc:
            raise ServiceError(f"pipeline {pipe.name!r}: partition: {exc}", "partition") from None

    def snapshot_of(self, run: RunRecord) -> dict[str, Any]:
        """The graph a run was made from: the snapshot of its code version."""
        snapshot = self.store.runs.get_snapshot(run.pipeline, run.code_version)
        if snapshot is None:  # runs made before snapshots were kept: use the code as it is
            pipe = self.project.pipelines.get(run.pipeline)
            snapshot = pipe.snapshot() if pipe is not None else {"nodes": []}
        return snapshot

    @staticmethod
    def in_graph_order(
        snapshot: dict[str, Any], rows: Iterable[TaskRunRecord]
    ) -> list[TaskRunRecord]:
        """A run's task runs in the order of its graph's ``snapshot`` (topological, ties in
        declaration order), each mapped node's elements after it by index."""
        nodes = [n["id"] for n in snapshot.get("nodes", [])]
        place = {node: i for i, node in enumerate(nodes)}
        return sorted(
            rows,
            key=lambda r: (
                place.get(r.node, len(place)),
                r.node,
                -1 if r.map_index is None else r.map_index,
                r.task_key,
            ),
        )

    def save_snapshot(self, pipe: Pipeline) -> None:
        self.store.runs.save_snapshot(pipe.name, pipe.code_version, pipe.snapshot(), self.clock())

    def log_path(self, run_id: str, task_key: str, attempt: int) -> Path:
        """Where an attempt's log is written."""
        return Path(plan.log_path(self.config.logs_dir, run_id, task_key, attempt))

    def door(
        self, actor: Actor, *, on_run: Callable[[RunRecord | None], None] | None = None
    ) -> Door:
        """The services of this workspace for ``actor`` (see ``legato.services.door``)."""
        from legato.services.door import Door

        return Door(self, actor, on_run=on_run)


__all__ = ["Workspace"]
