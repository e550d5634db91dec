"""The harness: pipelines run in this process on a store of their own, in a temporary folder.

A ``Harness`` is a workspace whose store (SQLite), results and logs are under one folder and
whose executor runs attempts in threads of this process (thread mode), so a test sees its
tasks' outputs, errors and logs at once and may hand them live objects. It goes through the
services door as the local user, like ``legato run`` does.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.config import ProjectConfig, load_config
from legato.definitions.pipeline import Pipeline
from legato.domain.states import TaskState
from legato.testing.result import AttemptResult, PipelineResult, TaskResult, TaskResults

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.door import Door

#: How long a test run may take unless told otherwise (seconds).
DEFAULT_TIMEOUT = 60.0
#: Attempts at once: each is a thread of this process.
DEFAULT_WORKERS = 4


class RunTimeout(TimeoutError):
    """A test run did not finish in time; it was canceled. ``result`` is what it had done."""

    def __init__(self, message: str, result: PipelineResult) -> None:
        super().__init__(message)
        self.result = result


class Harness:
    """Runs pipelines in this process on a temporary store under ``folder``.

    ``project`` is a project folder (its legato.toml and modules; its store, results, logs
    and executor settings are replaced by the harness's own); or give ``pipelines``,
    imported Pipeline objects, and a project is made around them (each pool its tasks name
    has one slot). ``resources`` hands objects to the tasks in place of the configured
    resources of those names (attempts run in this process, so they may be live objects: a
    connection, a fake); ``env`` chooses the project's ``[env.NAME]``, its resources
    included (None: LEGATO_ENV's, else none). Several runs share the
    store, so a test may re-run one. Close it (or use it as a context manager) to stop its
    threads and close its store; the folder is left for the test to look at.
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        project: Path | str | None = None,
        pipelines: Iterable[Pipeline] = (),
        resources: Mapping[str, Any] | None = None,
        workers: int = DEFAULT_WORKERS,
        env: str | None = None,
    ) -> None:
        from legato.resources.opened import override

        # Before the project loads: the loader counts the given names as declared.
        self._undo = override(resources) if resources else _nothing
        try:
            self._open(folder, project, list(pipelines), workers, env)
        except BaseException:
            self._undo()
            raise

    def _open(
        self,
        folder: Path | str,
        project: Path | str | None,
        given: list[Pipeline],
        workers: int,
        env: str | None,
    ) -> None:
        from legato.loader import Project
        from legato.services.actor import Actor
        from legato.services.door import open_given

        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        if (project is None) == (not given):
            raise TypeError("give a Harness a project folder or pipelines: one of the two")
        if project is not None:
            config = _isolated(load_config(Path(project), env), self.folder, workers)
            door = open_given(config, Actor.local_user())
        else:
            config = _isolated(_config_around(given, self.folder), self.folder, workers)
            found: dict[str, Pipeline] = {}
            for pipe in given:
                if not isinstance(pipe, Pipeline):
                    raise TypeError(f"not a pipeline: {pipe!r} (decorate it with @pipeline)")
                if not pipe.code_version:  # imported here, not by the loader
                    pipe.code_version = _code_version(pipe)
                found[pipe.name] = pipe
            door = open_given(config, Actor.local_user(), Project(config=config, pipelines=found))
        self.config = config
        self.door: Door = door

    @property
    def pipelines(self) -> list[str]:
        """The names of the pipelines this harness can run."""
        return sorted(self.door.project.pipelines())

    def run(
        self,
        pipeline: str | Pipeline,
        *,
        params: Mapping[str, Any] | None = None,
        partition: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> PipelineResult:
        """Run ``pipeline`` (a name, or a Pipeline this harness was made with) to its end.

        ``params`` are Python values, checked against the pipeline's params as ``legato run``
        checks them; ``partition`` is a partition key. A run still going after ``timeout``
        seconds is canceled and RunTimeout raised.
        """
        name = pipeline.name if isinstance(pipeline, Pipeline) else pipeline
        return self._drive(
            lambda created: self.door.runs.run_pipeline(
                name, dict(params or {}), partition=partition, on_created=created
            ),
            timeout,
        )

    def rerun(
        self, run_id: str, *, task: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> PipelineResult:
        """Re-run the finished run ``run_id`` as ``legato rerun`` does: its failed tasks and
        their downstream (or, with ``task``, that task and its downstream) run again, the
        others' stored results are reused."""

        def start(created: Callable[[RunRecord], None]) -> RunRecord:
            new = self.door.runs.rerun(run_id, task=task)
            created(new)
            return self.door.runs.execute(new.id)

        return self._drive(start, timeout)

    def _drive(
        self,
        start: Callable[[Callable[[RunRecord], None]], RunRecord],
        timeout: float | None,
    ) -> PipelineResult:
        # ``start(created)`` makes a run, calls ``created`` with it, and drives it to its end;
        # a timer cancels it after ``timeout`` s, which ends the drive (an attempt's thread
        # is abandoned, as the executor does for a killed thread).
        runs = self.door.runs
        made: list[RunRecord] = []
        lock = threading.Lock()
        timed_out = threading.Event()

        def created(run: RunRecord) -> None:
            with lock:
                made.append(run)
                late = timed_out.is_set()
            if late:
                runs.cancel(run.id)

        def cancel() -> None:
            with lock:
                timed_out.set()
                run = made[0] if made else None
            if run is not None:
                runs.cancel(run.id)

        timer = threading.Timer(timeout, cancel) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            run = start(created)
        finally:
            if timer is not None:
                timer.cancel()
        result = self.result(run.id)
        if timed_out.is_set() and timeout is not None:
            raise RunTimeout(
                f"run {run.id} of {run.pipeline!r} did not finish within {timeout:g} s "
                f"and was canceled ({_states(result)})",
                result,
            )
        return result

    def result(self, run_id: str) -> PipelineResult:
        """What the store holds of run ``run_id`` (a unique prefix will do)."""
        runs = self.door.runs
        run = runs.find_run(run_id)
        attempts: dict[str, list[AttemptResult]] = {}
        logs = {(e.task_key, e.attempt): e.text() for e in runs.logs(run.id)}
        for a in runs.attempts(run.id):
            attempts.setdefault(a.task_key, []).append(
                AttemptResult(
                    a.number, a.outcome, a.error, a.traceback, logs.get((a.task_key, a.number), "")
                )
            )
        tasks: dict[str, TaskResult] = {}
        for row in runs.task_runs(run.id):
            tried = tuple(attempts.get(row.task_key, ()))
            failed = [a for a in tried if a.outcome != "succeeded"]
            extra: dict[str, Any] = {}
            if row.state == TaskState.SUCCEEDED:
                extra["_output"] = runs.output(run.id, row.task_key)
            tasks[row.task_key] = TaskResult(
                key=row.task_key,
                node=row.node,
                state=row.state,
                attempts=tried,
                error=row.error or (failed[-1].error if failed else None),
                traceback=failed[-1].traceback if failed else None,
                log="".join(a.log for a in tried),
                **extra,
            )
        return PipelineResult(
            run_id=run.id,
            pipeline=run.pipeline,
            state=run.state,
            params=dict(run.params),
            partition=run.partition,
            error=run.error,
            tasks=TaskResults(run.pipeline, tasks),
        )

    def close(self) -> None:
        """Stop the harness's threads and close its store; the resources it was given are
        no longer handed to tasks (they are the test's to close)."""
        try:
            self.door.close()
        finally:
            self._undo()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_pipeline(
    pipeline: str | Pipeline,
    *,
    params: Mapping[str, Any] | None = None,
    partition: str | None = None,
    resources: Mapping[str, Any] | None = None,
    project: Path | str | None = None,
    tmp_path: Path | str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    env: str | None = None,
) -> PipelineResult:
    """Run one pipeline in this process on a temporary store and return what each task did.

    ``pipeline`` is a Pipeline object (a project is made around it) or the name of a
    pipeline of the project in folder ``project``. The store, results and logs go under
    ``tmp_path`` (kept) or a temporary folder (removed afterwards: outputs and logs are read
    into the result first). ``env`` chooses the project's ``[env.NAME]`` (None: LEGATO_ENV's,
    else none). See ``Harness`` and ``Harness.run`` for the other arguments.
    """
    if isinstance(pipeline, str) and project is None:
        raise TypeError(
            f"run_pipeline({pipeline!r}): a pipeline given by name needs project=FOLDER "
            "(or pass the Pipeline object itself)"
        )
    if isinstance(pipeline, Pipeline) and project is not None:
        raise TypeError("run_pipeline: give the pipeline's name with project=, not the object")
    folder = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp("-legato"))
    try:
        harness = (
            Harness(folder, project=project, resources=resources, env=env)
            if project is not None
            else Harness(folder, pipelines=[pipeline], resources=resources)  # type: ignore[list-item]
        )
        with harness:
            return harness.run(pipeline, params=params, partition=partition, timeout=timeout)
    finally:
        if tmp_path is None:
            shutil.rmtree(folder, ignore_errors=True)


def _isolated(config: ProjectConfig, folder: Path, workers: int) -> ProjectConfig:
    # Everything a run writes goes under the harness's folder; attempts run in threads here.
    return replace(
        config,
        database_url=f"sqlite:///{folder / 'legato.db'}",
        results_url=str(folder / "results"),
        logs_dir=folder / "logs",
        executor="local",
        mode="thread",
        workers=workers,
        secret_key_file=folder / "secret.keys",
    )


def _config_around(pipelines: list[Pipeline], folder: Path) -> ProjectConfig:
    pipes = [p for p in pipelines if isinstance(p, Pipeline)]
    modules = tuple(dict.fromkeys(p.module for p in pipes))
    # No legato.toml declares the pools the tasks name: one slot each, the cautious reading
    # (a pool usually guards something that takes one writer).
    pools = {
        node.task.pool: 1
        for p in pipes
        for node in p.graph.nodes.values()
        if node.task.pool is not None
    }
    return ProjectConfig(
        root=folder,
        name="test",
        modules=modules or ("pipelines",),
        database_url="",
        results_url="",
        logs_dir=folder,
        pools=pools,
    )


def _code_version(pipe: Pipeline) -> str:
    # Stable for the same definition in the same file, as the loader's versions are.
    return hashlib.sha256(f"{pipe.file}:{pipe.line}:{pipe.name}".encode()).hexdigest()[:16]


def _nothing() -> None:
    return None


def _states(result: PipelineResult) -> str:
    counts: dict[str, int] = {}
    for t in result.tasks.values():
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


__all__ = ["DEFAULT_TIMEOUT", "Harness", "RunTimeout", "run_pipeline"]
