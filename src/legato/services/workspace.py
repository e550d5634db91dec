"""A project with its settings and parts: what the services share.

A ``Workspace`` is the project folder's ``legato.toml`` read, its code loaded, its store and
executor opened on first use, and the clock. It is the services' own: front ends get a
``Door`` (``Workspace.door``) and never the workspace or its store.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.clock import Clock, system_clock
from legato.config import ProjectConfig, load_config
from legato.definitions.pipeline import Pipeline
from legato.engine import plan
from legato.fingerprint import Fingerprint
from legato.loader import LoadError, Project, load_project
from legato.security.audit import AuditEntry
from legato.security.roles import Roles
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

    def __init__(
        self,
        project_dir: Path | str,
        *,
        clock: Clock = system_clock,
        env: str | None = None,
        config: ProjectConfig | None = None,
    ) -> None:
        # ``env``: the environment (see legato.config.load_config; None: LEGATO_ENV's).
        # ``config`` given: used as it is instead of reading the folder's legato.toml.
        self.config: ProjectConfig = config or load_config(Path(project_dir), env)
        self.clock = clock
        self._project: Project | None = None
        self._store: Store | None = None
        self._executor: Executor | None = None
        self.location_saved = False
        self._pools_synced = False
        self._last_position = 0
        # Reloads come from the daemon's loop and from threads creating runs (the API).
        self._reload_lock = threading.Lock()
        self._on_reload: list[Callable[[Reload], None]] = []
        self._code_of: dict[str, Fingerprint] = {}  # code version -> its files
        self._texts_saved: set[str] = set()  # fingerprints whose texts are in the store
        self._failed: object = None  # the code and legato.toml a reload failed on
        self.loads = 0  # how many times the code was loaded again since the first load
        self.loaded_at: datetime | None = None  # when the code served now was loaded
        self._looked_at: datetime | None = None  # see look()
        self._roles: Roles | None = None
        # Credentials checked lately: (kind, credential) -> (what it proved, when), see
        # legato.services.signin.RECHECK_AFTER. Shared by every door of this workspace.
        self.checked_credentials: dict[tuple[str, str], tuple[Any, datetime]] = {}

    @classmethod
    def of(
        cls, config: ProjectConfig, project: Project | None = None, *, clock: Clock = system_clock
    ) -> Workspace:
        """A workspace of ``config`` as given, serving ``project`` (pipelines already
        imported) instead of loading ``config.modules`` when one is given: what
        ``legato.testing`` runs pipelines in. A given project is never reloaded."""
        ws = cls(config.root, clock=clock, config=config)
        if project is not None:
            ws._remember_code(project)
            ws._project = project
        return ws

    # -- parts -------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        if self._project is None:
            project = load_project(self.config.root, self.config.environment)
            self._remember_code(project)
            self._project = project
            self.loaded_at = self.clock()
        return self._project

    def on_reload(self, listener: Callable[[Reload], None]) -> None:
        """Call ``listener`` after each reload of the code (from the reloading thread)."""
        self._on_reload.append(listener)

    def refresh(self) -> Reload | None:
        """Load the code again if it changed on disk; what the reload found, or None.

        Cheap when nothing changed (files are stat'ed, package folders listed). Runs
        created or started afterwards use the new code; runs in flight keep theirs (the
        executor keeps the workers of their code). A module that loaded before and fails
        now keeps serving the pipelines it had, and its error says so.
        """
        with self._reload_lock:
            old = self._project
            if old is None or old.fingerprint is None or not old.fingerprint.changed():
                return None
            newer = old.fingerprint.again()
            if not old.fingerprint.differs_from(newer):
                old.fingerprint = newer  # touched, not changed
                return None
            attempt = (newer.digest, newer.listing, _stamp(self.config.root / "legato.toml"))
            if attempt == self._failed:
                return None  # tried already: again once the code or legato.toml changes
            try:
                project = load_project(self.config.root, self.config.environment)
            except Exception as exc:  # legato.toml broken meanwhile: keep serving what runs
                self._failed = attempt
                done = Reload(
                    len(old.pipelines),
                    newer.digest[:12],
                    tuple(old.errors),
                    problem=f"{type(exc).__name__}: {exc}",
                )
            else:
                self._failed = None
                if not self._take(old, project):
                    return None
                assert project.fingerprint is not None
                done = Reload(
                    len(project.pipelines), project.fingerprint.digest[:12], tuple(project.errors)
                )
        for listener in self._on_reload:
            listener(done)
        return done

    def look(self) -> None:
        """``refresh()``, unless any caller of ``look`` did within ``LOOK_EVERY``: for
        readers that ask often (each open page's stream of the code's state), so that many
        of them cost no more than one."""
        now = self.clock()
        if self._looked_at is not None and now - self._looked_at < LOOK_EVERY:
            return
        self._looked_at = now
        self.refresh()

    def _take(self, old: Project, project: Project) -> bool:
        """Serve ``project``, loaded again, instead of ``old``; False if it holds the same
        code (nothing to tell anyone)."""
        assert old.fingerprint is not None and project.fingerprint is not None
        if project.fingerprint.digest == old.fingerprint.digest and [
            e.message for e in project.errors
        ] == [e.message for e in old.errors]:
            # A file that is no module of the project changed (a script beside it).
            old.fingerprint = project.fingerprint
            return False
        _keep_last_good(old, project)
        self._remember_code(project)
        self._project = project
        self.loads += 1
        self.loaded_at = self.clock()
        if self._executor is not None:
            self._executor.reload(project.pipelines)
        if self.location_saved:  # last: the store may be what fails
            self.save_location()
        return True

    def code_folders(self) -> list[str]:
        """The folders the code was loaded from: the project folder, its packages' folders
        and those of modules imported from outside it (what a watcher of the code watches)."""
        code = self.project.fingerprint
        found = {str(self.config.root)}
        if code is not None:
            found.update(code.folders)
            found.update(os.path.dirname(code.absolute(f.path)) for f in code.files)
        return sorted(f for f in found if os.path.isdir(f))

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
            try:
                self._check_environment(self._store)
            except BaseException:
                self._store.close()
                self._store = None
                raise
        return self._store

    def _check_environment(self, store: Store) -> None:
        """Record the environment as the store's on its first use; refuse a store of another.

        The store is where runs, cursors and secrets live: a process of one environment
        writing into another's would run dev's code against prod's state, or the reverse.
        """
        env = self.config.environment
        owner = store.facts.settle_fact("environment", env, self.clock())
        if owner == env:
            return
        from legato.config import DEFAULT_ENVIRONMENT, WrongEnvironment

        fix = f"[env.{env}]" if env != DEFAULT_ENVIRONMENT else f"[env.{owner}]"
        raise WrongEnvironment(
            f"the store {store.shown_url} belongs to environment {owner!r}, not {env!r}: "
            f"use --env {owner} to work in it, or give {fix} its own [store] url in "
            f"{self.config.root / 'legato.toml'}"
        )

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
                max_tasks_per_worker=self.config.max_tasks_per_worker,
                max_worker_memory_mb=self.config.max_worker_memory_mb,
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
        broken = [e.module for e in self.project.errors]
        raise self.unknown_pipeline(name, sorted(self.project.pipelines), broken=broken)

    def unknown_pipeline(
        self, name: str, names: list[str], *, broken: Iterable[str]
    ) -> UnknownPipeline:
        """The error for no pipeline ``name``, hinting at the closest of ``names`` (or
        listing them) and at the ``broken`` modules that failed to load."""
        close = difflib.get_close_matches(name, names, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f" (pipelines: {', '.join(names) or 'none'})"
        )
        failed = list(broken)
        if failed:
            hint += f"; modules that failed to load: {', '.join(failed)}"
        return UnknownPipeline(f"no pipeline named {name!r} in {self.config.root}{hint}")

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
        """Keep the pipeline's graph and the list of its code's files for its code version,
        and the text of those files (under the project folder, bounded in size)."""
        snapshot = pipe.snapshot()
        code = self._code_of.get(pipe.code_version)
        if code is not None:
            snapshot["code"] = {"files": code.hashes()}
            if code.digest not in self._texts_saved:
                self.store.runs.save_code_texts(_texts(code), self.clock())
                self._texts_saved.add(code.digest)
        self.store.runs.save_snapshot(pipe.name, pipe.code_version, snapshot, self.clock())

    def _remember_code(self, project: Project) -> None:
        # Which load's files each code version is made of: a pipeline kept from an earlier
        # load (its module fails now) keeps that load's files.
        if project.fingerprint is not None:
            for pipe in project.pipelines.values():
                self._code_of.setdefault(pipe.code_version, project.fingerprint)

    # -- the audit trail (the gate's sink) -------------------------------------------------

    def audit(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the store's hash-chained audit trail."""
        self.store.audit.append(entry)

    def audit_time(self) -> datetime:
        """The time an audit row carries: this workspace's clock."""
        return self.clock()

    def forget_credentials(self) -> None:
        """Check every credential against the store again (accounts, roles or a session
        changed)."""
        self.checked_credentials.clear()

    @property
    def roles(self) -> Roles:
        """The built-in roles and legato.toml's ``[roles]``."""
        if self._roles is None:
            self._roles = Roles.parse(self.config.roles)
        return self._roles

    def log_path(self, run_id: str, task_key: str, attempt: int) -> Path:
        """Where an attempt's log is written."""
        return Path(plan.log_path(self.config.logs_dir, run_id, task_key, attempt))

    def door(
        self, actor: Actor, *, on_run: Callable[[RunRecord | None], None] | None = None
    ) -> Door:
        """The services of this workspace for ``actor`` (see ``legato.services.door``)."""
        from legato.services.door import Door

        return Door(self, actor, on_run=on_run)


@dataclass(frozen=True)
class Reload:
    """What loading changed code again found."""

    pipelines: int
    digest: str  # the start of the hash of the code's files
    errors: tuple[LoadError, ...]
    problem: str | None = None  # the project could not be loaded at all: nothing changed

    def describe(self) -> str:
        """One line for the daemon's output (and a line per module that failed)."""
        if self.problem is not None:
            return (
                f"code changed, but the project cannot be loaded ({self.problem}); "
                f"still serving the {self.pipelines} pipelines loaded before"
            )
        noun = "pipeline" if self.pipelines == 1 else "pipelines"
        line = f"code changed: reloaded {self.pipelines} {noun} (code {self.digest})"
        for e in self.errors:
            line += f"\n  {e.module}: {e.message}"
        return line


#: ``Workspace.look`` looks at the code's files at most this often.
LOOK_EVERY = timedelta(seconds=0.25)

#: Source texts kept for showing what changed: files under the project folder, each at most
#: this many bytes, and all of a code version's at most TEXTS_MAX.
TEXT_MAX = 256 * 1024
TEXTS_MAX = 4 * 1024 * 1024


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _texts(code: Fingerprint) -> dict[str, str]:
    out: dict[str, str] = {}
    total = 0
    for f in code.files:
        if Path(f.path).is_absolute() or f.size > TEXT_MAX or total + f.size > TEXTS_MAX:
            continue
        try:
            text = Path(code.absolute(f.path)).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(text).hexdigest() != f.sha256:
            continue  # changed since it was loaded: the next load keeps its text
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\x00" in decoded:  # not text (and PostgreSQL's text cannot hold it)
            continue
        out[f.sha256] = decoded
        total += f.size
    return out


LAST_GOOD = " (serving the last good version of its pipelines)"


def _keep_last_good(old: Project, new: Project) -> None:
    # A module that fails to load now keeps its pipelines of the last good load: a broken
    # edit must not take schedules, triggers and webhooks away.
    errors = []
    for err in new.errors:
        kept = [
            p for name, p in old.pipelines.items()
            if name not in new.pipelines
            and (p.module == err.module or p.module.startswith(err.module + "."))
        ]
        for pipe in kept:
            new.pipelines[pipe.name] = pipe
        if kept and not err.message.endswith(LAST_GOOD):
            err = replace(err, message=err.message + LAST_GOOD)
        errors.append(err)
    new.errors = errors


__all__ = ["Reload", "Workspace"]
