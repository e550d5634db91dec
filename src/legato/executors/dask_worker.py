"""The worker's side of the Dask executor: what runs inside the Dask worker processes.

``DaskExecutor`` (``legato.executors.dask``, the driver's side) submits ``run_on_worker`` as
the Dask task of each attempt, and sends ``stop_attempt`` with ``client.run`` to stop one.
A worker runs an attempt here: it imports the project from ``project_root`` (kept per worker
process, loaded again when the driver sends another code version), runs ``run_attempt``
with thread capture into a local temporary file whose growth a per-process thread streams
as Dask events, and returns the outcome with the whole log.

Why this module must be importable on the workers: Dask pickles these functions *by
reference* (module and name), so every worker imports ``legato.executors.dask_worker``
itself; Legato (with ``distributed``) must be installed there. By reference on purpose:
the module's state (the loaded projects, the result stores, the log streamer's thread)
then lives once per worker process and serves every attempt it runs. (The functions run on
the scheduler are the opposite case: ``dask_scheduler`` is pickled by value.) Kept apart
from the driver's side, so that a worker imports only what it needs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import distributed

from legato.executors.capture import open_log
from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.pool import outcome
from legato.executors.worker import one_line, run_attempt
from legato.results.result_store import ResultStore
from legato.security.files import replace_private

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.loader import Project

log = logging.getLogger(__name__)

__all__ = ["ProjectPreload", "append_log", "run_on_worker", "stop_attempt"]

RELOAD_AFTER = 30.0  # seconds between two loads of a project whose version stays wrong
STREAM_INTERVAL = 0.25  # seconds between two log chunks of a running attempt
STREAM_CHUNK = 64 * 1024  # bytes at most per chunk (the rest comes with the outcome)
_RUNNING_STATES = ("executing", "long-running", "cancelled", "resumed")

# Per worker process: the loaded project (by root) and the result stores (by URL). Dask
# runs several attempts at once in a worker with more than one thread, hence the lock.
_cache_lock = threading.Lock()
_projects: dict[str, Project] = {}
_asked: set[tuple[str, str, str]] = set()  # (root, pipeline, code version) loaded for
_loaded_at: dict[str, float] = {}  # root -> monotonic time of its last load
_stores: dict[str, ResultStore] = {}


def _pipeline(root: str, name: str, code_version: str) -> tuple[Pipeline | None, str | None]:
    """The pipeline as this worker's copy of the project defines it, and a warning if its
    code version is not the driver's."""
    from legato.loader import load_project

    with _cache_lock:
        project = _projects.get(root)
        pipe = project.pipelines.get(name) if project is not None else None
        current = pipe is not None and pipe.code_version == code_version
        # A version not asked for before: the code was changed and the driver restarted, so
        # this worker's copy may be new too. Load it again. While this worker's code still
        # differs (not deployed here yet), load it again only now and then: every attempt
        # would be too costly.
        asked = (root, name, code_version)
        stale = time.monotonic() - _loaded_at.get(root, -RELOAD_AFTER) >= RELOAD_AFTER
        if not current and (asked not in _asked or stale):
            _asked.add(asked)
            project = _projects[root] = load_project(root)
            _loaded_at[root] = time.monotonic()
            pipe = project.pipelines.get(name)
        if pipe is None:
            return None, None
        if pipe.code_version != code_version:
            return pipe, (
                f"warning: the project code on this worker (code version {pipe.code_version}) "
                f"differs from the driver's ({code_version}); running this worker's code"
            )
        return pipe, None


class ProjectPreload(distributed.WorkerPlugin):
    """Loads the project on each worker as it starts, and on each worker that replaces one.

    A task's timeout counts from the driver's submit, so a worker that first imported the
    project inside an attempt would spend that attempt's time on it: a replacement for a
    worker killed by a timeout would often time the retry out too on a busy machine.
    """

    name = "legato-project-preload"

    def __init__(self, root: str, versions: Mapping[str, str]) -> None:
        self.root = root
        self.versions = dict(versions)

    def setup(self, worker: distributed.Worker) -> None:
        for name, version in self.versions.items():
            try:
                _pipeline(self.root, name, version)
            except Exception as exc:  # the first attempt says it, with the worker's name
                log.warning("cannot preload the project from %s: %s", self.root, one_line(exc))
            return  # one load brings every pipeline of the project

    def teardown(self, worker: distributed.Worker) -> None:
        # The worker is closing: so are the resources its attempts opened.
        from legato.resources.opened import close_all

        close_all()


def _results(url: str) -> ResultStore:
    with _cache_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = ResultStore(url)
        return store


class _Tail:
    """A running attempt's log file whose growth is being published."""

    __slots__ = ("attempt_id", "offset", "path", "topic", "worker")

    def __init__(self, path: str, topic: str, attempt_id: str, worker: Any) -> None:
        self.path = path
        self.topic = topic
        self.attempt_id = attempt_id
        self.worker = worker
        self.offset = 0


class _LogStreamer:
    """One thread per worker process sends what the running attempts' logs grew by.

    Chunks carry their byte offset, so the executor can drop what it already has; what
    is never sent (a lost event, output past STREAM_CHUNK per interval) comes with the
    outcome, which holds the whole log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tails: dict[str, _Tail] = {}
        self._thread: threading.Thread | None = None

    def add(self, tail: _Tail) -> None:
        with self._lock:
            self._tails[tail.path] = tail
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="legato-log-streamer", daemon=True
                )
                self._thread.start()

    def remove(self, path: str) -> None:
        # Under the lock: once this returns, nothing more of that file is published.
        with self._lock:
            self._tails.pop(path, None)

    def _loop(self) -> None:
        while True:
            time.sleep(STREAM_INTERVAL)
            with self._lock:
                for tail in list(self._tails.values()):
                    with suppress(Exception):  # a closing worker, a vanished file: no log
                        self._send(tail)

    @staticmethod
    def _send(tail: _Tail) -> None:
        with open(tail.path, "rb") as f:
            f.seek(tail.offset)
            data = f.read(STREAM_CHUNK)
        if data:
            msg = {"attempt": tail.attempt_id, "offset": tail.offset, "data": data}
            tail.worker.log_event(tail.topic, msg)  # thread-safe: handed to the worker's loop
            tail.offset += len(data)


_streamer = _LogStreamer()


def run_on_worker(
    root: str,
    code_version: str,
    spec: AttemptSpec,
    results_url: str,
    attempt_id: str,
    topic: str | None,
) -> tuple[AttemptOutcome, bytes]:
    """Run one attempt on this Dask worker: ``(outcome, the attempt's whole log)``.

    Runs as a Dask task. Never raises for the task's own failures (they are outcomes); an
    exception out of here means the worker itself is in trouble.
    """
    worker = distributed.get_worker()
    label = str(worker.address)
    scratch = getattr(worker, "local_directory", None) or tempfile.gettempdir()
    fd, tmp = tempfile.mkstemp(prefix="legato-", suffix=".log", dir=scratch)
    os.close(fd)
    try:
        if topic is not None:
            _streamer.add(_Tail(tmp, topic, attempt_id, worker))
        try:
            result = _run_here(root, code_version, dataclasses.replace(spec, log_path=tmp),
                               results_url, label)
        finally:
            _streamer.remove(tmp)
        with open(tmp, "rb") as f:
            data = f.read()
    finally:
        with suppress(OSError):
            os.unlink(tmp)
    return result, data


def _run_here(
    root: str, code_version: str, spec: AttemptSpec, results_url: str, label: str
) -> AttemptOutcome:
    def fail(error: str, retryable: bool, detail: str | None = None) -> AttemptOutcome:
        append_log(spec.log_path, f"legato: {detail or error}\n".encode())
        return outcome(spec, "failed", label, error=error, retryable=retryable)

    try:
        pipe, warning = _pipeline(root, spec.pipeline, code_version)
    except BaseException as exc:
        # The driver loaded this code: a worker that cannot is deployed wrongly, and
        # another worker may do better.
        return fail(
            f"cannot load the project from {root} on Dask worker {label}: {one_line(exc)} "
            "(the project's code must be at the same path on every worker)",
            retryable=True,
        )
    if pipe is None:
        return fail(f"no pipeline {spec.pipeline!r} in the project at {root} on Dask worker "
                    f"{label}", retryable=False)
    node = pipe.graph.nodes.get(spec.node)
    if node is None:
        return fail(f"no node {spec.node!r} in pipeline {spec.pipeline!r} on Dask worker "
                    f"{label}", retryable=False)
    if warning is not None:
        append_log(spec.log_path, f"legato: {warning}\n".encode())
    return run_attempt(spec, node.task, _results(results_url), capture="thread", worker=label)


def stop_attempt(key: str, dask_worker: Any = None) -> str:
    """Run on a worker (``client.run``): kill this worker process if it runs task ``key``.

    SIGKILL, not ``restart_workers``: a graceful restart waits four seconds for the task's
    thread before killing the process, and the slot stays taken meanwhile. The nanny
    starts a fresh worker at once. The kill is deferred a moment so the reply gets out.
    """
    ts = dask_worker.state.tasks.get(key)
    if ts is None or ts.state not in _RUNNING_STATES:
        return "not running"
    if not dask_worker.nanny:
        return "no nanny"  # killing it would lose the worker for good
    dask_worker.loop.call_later(0.05, os.kill, os.getpid(), signal.SIGKILL)
    return "killed"


def append_log(path: str, data: bytes) -> str | None:
    """Append to an attempt's log (creating its folder). Never raises, as for notes: returns
    None, or why the data could not be written (a full volume)."""
    try:
        fd = open_log(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
    return None


def finish_log(path: str, streamed: int, data: bytes) -> str | None:
    """Complete an attempt's log from the worker's whole log ``data``, of which the first
    ``streamed`` bytes were appended already as they came. Never raises; returns as
    ``append_log`` does.

    The worker masks the secret values an attempt read once it ends, after some of them may
    have streamed: when what was streamed is not how ``data`` begins, the streamed part is
    replaced by ``data`` (atomically, what came before the attempt kept) instead of being
    continued."""
    if streamed == 0:
        return append_log(path, data)
    try:
        with open(path, "rb") as f:
            start = f.seek(0, os.SEEK_END) - streamed
            f.seek(start)
            if f.read(streamed) == data[:streamed]:
                return append_log(path, data[streamed:])
            f.seek(0)
            before = f.read(start)
        replace_private(path, before + data)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
