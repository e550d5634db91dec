"""The Dask executor: attempts run on the workers of a Dask distributed cluster.

``DaskExecutor(address=...)`` connects to an existing scheduler; without an address it
starts a ``LocalCluster`` of ``workers`` worker processes (one thread each) that it owns and
stops in ``shutdown()``.

What the cluster must provide:

* **The project's code at the same path on every worker** (``project_root``), as with
  Airflow's DAG folder: a worker imports the project itself (``load_project``) when it
  starts (a worker plugin, so replacements of killed workers too) and keeps it, reloading
  when the driver sends another code version. Legato and the project's dependencies must be
  installed on the workers; the scheduler needs neither.
* **A result store every worker can reach**: a folder they all mount at the same path, or
  an fsspec URL (``s3://...``). Workers read their inputs and write their results there.
* **One attempt per worker process**: start workers with ``--nthreads 1``. Stopping an
  attempt (timeout, cancel) kills the worker process running it (its nanny starts a fresh
  one); other attempts running in the same process would die with it and be retried.
* **``allowed-failures`` = 0** on the scheduler
  (``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0``): otherwise Dask silently re-runs an
  attempt whose worker died, behind Legato's retry policy. The executor sets it on the
  clusters it starts and warns when an external scheduler has another value.

Logs: a worker writes an attempt's output (stdout, stderr, logging; thread capture, so not
that of C code or child processes) to a local temporary file, streams what it grows by
every quarter second as Dask events, and returns the whole text with the outcome. The
executor appends to the attempt's usual log file (``spec.log_path``) what it has not written
yet, so the log grows while the attempt runs and each byte is written once; ``legato logs``
and the API read it like a local one.

Execution is at-least-once, as with the local executor: if a worker dies after an attempt
finished but before the driver fetched its outcome, Dask computes the attempt again.

This module is the driver's side; what runs on the workers is in ``dask_worker``.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Collection, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import dask
import distributed

from legato.executors import dask_scheduler
from legato.executors.capture import mark_log_full
from legato.executors.dask_worker import (
    ProjectPreload,
    append_log,
    finish_log,
    run_on_worker,
    stop_attempt,
)
from legato.executors.interface import LOG_NOTE, AttemptOutcome, AttemptSpec
from legato.executors.pool import AttemptKey, ExecutorError, attempt_key, outcome
from legato.executors.threads import ThreadAttempts
from legato.executors.worker import one_line, run_attempt
from legato.results.result_store import ResultStore

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline

__all__ = ["DaskExecutor", "ExecutorError"]

log = logging.getLogger("legato.executors.dask")

# The scheduler runs these by value: it may not have Legato installed (module docstring).
cloudpickle.register_pickle_by_value(dask_scheduler)

SLOTS_REFRESH = 1.0  # seconds between two asks for the cluster's thread count
TOPIC_RETENTION = 10  # past log events the scheduler keeps per executor (bound_topic)
KILL_JOIN = 10.0  # seconds shutdown() waits for attempts being stopped
KILL_GONE = 10.0  # seconds a kill waits for the scheduler to see the worker gone

_live: weakref.WeakSet[DaskExecutor] = weakref.WeakSet()


# -- the driver's side (the worker's is in dask_worker) ------------------------------------


def _note(path: str, text: str) -> None:
    append_log(path, f"legato: {text}\n".encode())


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\[\]-]")


@dataclasses.dataclass(eq=False)
class _Attempt:
    """An attempt submitted to Dask, until its outcome is taken or it is killed."""

    spec: AttemptSpec
    key: str  # the Dask key
    future: Any = None  # distributed.Future
    written: int = 0  # bytes of the worker's log already appended to spec.log_path
    log_error: str | None = None  # why a part of the log could not be appended (full volume)


class DaskExecutor:
    """Runs attempts on a Dask distributed cluster; see the module docstring.

    ``address``: the scheduler's (``tcp://host:8786``); None starts a LocalCluster of
    ``workers`` processes with one thread each. ``results``: the result store's root, a path
    or fsspec URL every worker can reach. ``project_root``: where the project's code is, on
    this machine and at the same path on every worker. ``stream_logs=False`` sends each
    attempt's log with its outcome only. Use it from one thread (the driver's loop); only
    ``wake()`` may be called from any thread.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        results: str | os.PathLike[str] | None = None,
        project_root: str | os.PathLike[str] | None = None,
        *,
        stream_logs: bool = True,
    ) -> None:
        if results is None or project_root is None:
            raise TypeError("DaskExecutor needs results=... and project_root=...")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.address = address
        self.workers = workers
        self.results_url = os.fspath(results)
        self.project_root = str(Path(project_root).resolve())
        self.stream_logs = stream_logs
        self._token = uuid.uuid4().hex[:8]  # tells this executor's keys from other drivers'
        self._topic = f"legato-logs-{self._token}"
        self._pipelines: dict[str, Pipeline] = {}
        self._versions: dict[str, str] = {}
        self._client: Any = None  # distributed.Client
        self._cluster: Any = None  # distributed.LocalCluster, when we own one
        self._dist_level: int | None = None  # the "distributed" logger's, while we own one
        self._started = False
        self._closed = False
        # Done-callbacks (Dask's callback thread), log events (the client's event loop),
        # thread attempts and wake() touch these: all guarded by the lock.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopping = 0  # kills under way whose outcome is not reported yet
        self._running: dict[str, _Attempt] = {}  # by Dask key
        self._keys: dict[AttemptKey, str] = {}
        self._finished: list[Any] = []  # futures whose done-callback ran
        self._ready: list[AttemptOutcome] = []
        self._woken = False
        self._threads = ThreadAttempts(self._cond, self._run_in_thread, self._thread_done)
        self._driver_results: ResultStore | None = None
        self._nthreads = 0
        self._nthreads_at = 0.0
        self._stoppers: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------------

    def start(self, pipelines: Mapping[str, Pipeline]) -> None:
        """Connect to the scheduler (or start the LocalCluster) and subscribe to the logs."""
        if self._started:
            raise ExecutorError("the executor is already started")
        self._started = True
        self._pipelines = dict(pipelines)
        self._versions = {name: p.code_version for name, p in self._pipelines.items()}
        _live.add(self)
        try:
            if self.address is None:
                self._start_local_cluster()
            else:
                try:
                    # Gives up after distributed.comm.timeouts.connect (30 s by default;
                    # DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT).
                    self._client = distributed.Client(self.address, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise ExecutorError(
                        f"cannot connect to the Dask scheduler at {self.address}: {one_line(exc)}"
                    ) from None
                self._check_allowed_failures()
            if self.stream_logs and not self._bound_topic():
                # The scheduler would keep up to 100,000 log chunks of ours in memory: each
                # log then comes with its attempt's outcome only.
                log.info("this Dask scheduler cannot stream logs; they come with outcomes")
                self.stream_logs = False
            if self.stream_logs:
                self._client.subscribe_topic(self._topic, self._on_log_event)
            self._client.register_plugin(ProjectPreload(self.project_root, self._versions))
            self._refresh_slots()
            if self._nthreads == 0:
                log.warning("the Dask cluster at %s has no workers yet", self.scheduler_address)
        except BaseException:
            self.shutdown()
            raise

    def _start_local_cluster(self) -> None:
        # The cluster's scheduler and nannies live in this process and log every start, stop
        # and worker death at INFO or WARNING into the root logger, that is into a daemon's
        # log (silence_logs below only quiets distributed's own handlers). Legato reports
        # what matters about them itself; errors still show.
        dist_log = logging.getLogger("distributed")
        self._dist_level = dist_log.level
        if dist_log.getEffectiveLevel() < logging.ERROR:
            dist_log.setLevel(logging.ERROR)
        # allowed-failures is read when the scheduler is created: 0 makes a task whose worker
        # died err (KilledWorker) instead of being re-run by Dask; Legato's retries decide.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                # The scheduler serves HTTP (health, metrics; the dashboard with bokeh) even
                # with no dashboard asked for, on 8787 by default: a random local port keeps
                # that port for the user's own clusters and the server off the network.
                dashboard_address="127.0.0.1:0",
                # Every worker death is reported in the attempt's outcome and log; Dask's own
                # messages about it (and about the restarts kills cause) are noise here.
                silence_logs=logging.CRITICAL,
            )
        self._client = distributed.Client(self._cluster, set_as_default=False)

    def _bound_topic(self) -> bool:
        try:
            return bool(self._client.run_on_scheduler(
                dask_scheduler.bound_topic, self._topic, TOPIC_RETENTION
            ))
        except Exception:
            return False

    def _check_allowed_failures(self) -> None:
        try:
            allowed = self._client.run_on_scheduler(dask_scheduler.allowed_failures)
        except Exception as exc:
            log.warning("cannot read allowed-failures of the Dask scheduler: %s", one_line(exc))
            return
        if allowed != 0:
            log.warning(
                "the Dask scheduler at %s re-runs a task whose worker died up to %s times "
                "(allowed-failures) before Legato hears of it; start it with "
                "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 so that Legato's retry "
                "policy alone decides",
                self.address,
                allowed,
            )

    def shutdown(self) -> None:
        """Drop running attempts, disconnect, and stop the LocalCluster if we started it.

        On an external cluster, attempts still running are canceled but, unless they were
        killed before, run to their end on their workers. Idempotent; also run at exit.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            futures = [a.future for a in self._running.values() if a.future is not None]
            self._running.clear()
            self._keys.clear()
            self._finished.clear()
            self._cond.notify_all()
        _live.discard(self)
        deadline = time.monotonic() + KILL_JOIN
        for t in self._stoppers:  # kills in flight need the client
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.stop()
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):
                if futures:
                    client.cancel(futures)
            if self.stream_logs:
                with suppress(Exception):
                    client.unsubscribe_topic(self._topic)
                if self._cluster is None:  # an owned cluster's scheduler goes anyway
                    with suppress(Exception):
                        client.run_on_scheduler(dask_scheduler.drop_topic, self._topic)
            with suppress(Exception):
                client.close()
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            with suppress(Exception):
                cluster.close()
        if self._dist_level is not None:
            logging.getLogger("distributed").setLevel(self._dist_level)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (None before start and after shutdown)."""
        return self._client

    @property
    def scheduler_address(self) -> str | None:
        """The scheduler's address: the one given, or that of the LocalCluster."""
        if self._cluster is not None:
            return str(self._cluster.scheduler_address)
        return self.address

    # -- the Executor protocol -----------------------------------------------------------

    def reload(self, pipelines: Mapping[str, Pipeline]) -> None:
        """Newly loaded code. Workers import the project from their own disk: an attempt
        asks for its run's code version, and a worker whose files differ runs its own code
        and says so in the attempt's log. ``in_process`` tasks run the newly loaded code."""
        with self._lock:
            self._pipelines = dict(pipelines)
            self._versions = {name: p.code_version for name, p in self._pipelines.items()}

    def retain(self, versions: Collection[str]) -> None:
        """Nothing to let go: Dask workers hold one load of the code each."""

    def free_slots(self) -> int:
        """The cluster's worker threads minus the attempts submitted and not yet reported.

        Thread attempts (``in_process`` tasks, run in the driver) are not counted. The
        thread count is asked from the scheduler at most once a second.
        """
        if not self._started or self._closed:
            return 0
        if time.monotonic() - self._nthreads_at >= SLOTS_REFRESH:
            self._refresh_slots()
        with self._lock:
            return max(0, self._nthreads - len(self._running))

    def submit(self, spec: AttemptSpec) -> str:
        """Hand the attempt to Dask; returns "dask" (or "thread" for in_process tasks)."""
        if not self._started or self._closed:
            raise ExecutorError("the executor is not running")
        if spec.in_process:
            # Light by contract: run it in a thread of the driver, as the local executor
            # does, rather than pay a trip through the cluster.
            return self._threads.submit(spec)
        key = _KEY_UNSAFE.sub(
            "_", f"legato-{spec.run_id}-{spec.task_key}-{spec.attempt}-{self._token}"
        )
        entry = _Attempt(spec, key)
        version = spec.code_version or self._versions.get(spec.pipeline, "")
        with self._lock:
            # Registered before the submit: a done-callback may come before submit returns.
            self._running[key] = entry
            self._keys[attempt_key(spec)] = key
        try:
            future = self._client.submit(
                run_on_worker,
                self.project_root,
                version,
                spec,
                self.results_url,
                key,
                self._topic if self.stream_logs else None,
                key=key,
                pure=False,
                retries=0,  # a retry is Legato's decision
            )
        except Exception as exc:  # the spec does not pickle (a param value); nothing was sent
            with self._cond:
                self._running.pop(key, None)
                self._keys.pop(attempt_key(spec), None)
                self._ready.append(outcome(spec, "failed", "dask", retryable=False,
                                           error=f"the attempt cannot be sent to Dask: "
                                                 f"{one_line(exc)}"))
                self._cond.notify_all()
            return "dask"
        entry.future = future
        future.add_done_callback(self._on_done)
        return "dask"

    def kill(self, run_id: str, task_key: str, attempt: int, status: str, reason: str) -> None:
        """Stop the attempt for real: the worker process running it is killed (its nanny
        starts a new one) and the future canceled; ``status`` is reported once the
        scheduler has seen that worker go (a thread attempt: at once, abandoned).

        ``retryable`` of that outcome is False for "canceled", True otherwise. A no-op if the
        attempt is not running (its own outcome stands). A thread attempt is abandoned.
        """
        key = (run_id, task_key, attempt)
        with self._cond:
            spec = self._threads.running.pop(key, None)
            entry = None
            label = "thread"
            if spec is None:
                dask_key = self._keys.pop(key, None)
                entry = self._running.pop(dask_key, None) if dask_key is not None else None
                if entry is None:
                    return
                spec, label = entry.spec, "dask"
            # Under the lock: no log chunk of the attempt is written after this note.
            _note(spec.log_path, f"attempt {status}: {reason}")
            killed = outcome(spec, status, label, error=reason, retryable=status != "canceled")
            if entry is None or entry.future is None:
                self._ready.append(killed)
                self._cond.notify_all()
                return
            self._stopping += 1
        # A round trip or two to the scheduler and a worker: not on the driver's loop. The
        # outcome is reported once the worker is gone, so that a retry is not handed to
        # the worker about to die (it would die with it).
        t = threading.Thread(
            target=self._stop, args=(entry, killed), name="legato-dask-kill", daemon=True
        )
        self._stoppers = [s for s in self._stoppers if s.is_alive()] + [t]
        t.start()

    def wait(self, timeout: float | None) -> list[AttemptOutcome]:
        """Outcomes of finished attempts: all that are ready once one is, or [] after timeout.

        Returns [] at once when nothing runs and ``timeout`` is None, and as soon as
        ``wake()`` was called (during this wait or since the last one).
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            with self._cond:
                while True:
                    if self._ready or self._finished or self._woken or self._closed:
                        break
                    running = self._busy()
                    if not running and deadline is None:
                        break
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    if self._nthreads == 0 and not running:
                        # No worker yet (an external cluster still starting): come back
                        # within a second so that free_slots() sees the first ones.
                        left = min(left, SLOTS_REFRESH) if left is not None else SLOTS_REFRESH
                    self._cond.wait(left)
                woken, self._woken = self._woken, False
                ready, self._ready = self._ready, []
                finished, self._finished = self._finished, []
                running = self._busy()
            out = ready + self._collect(finished)
            if out or woken or self._closed or (not running and deadline is None):
                return out
            if deadline is None or time.monotonic() >= deadline:
                return out
            if self._nthreads == 0 and not running:
                return out

    def _busy(self) -> bool:
        # Under the lock. Attempts being stopped still owe their outcome.
        return bool(self._running) or bool(self._threads.running) or self._stopping > 0

    def wake(self) -> None:
        """Make a blocked ``wait()`` (or else the next one) return promptly. Thread-safe."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # -- internals -----------------------------------------------------------------------

    def _refresh_slots(self) -> None:
        self._nthreads_at = time.monotonic()
        try:
            total = sum(int(n) for n in self._client.nthreads().values())
        except Exception as exc:  # the scheduler is unreachable for now: keep the last count
            log.warning("cannot ask the Dask scheduler for its workers: %s", one_line(exc))
            return
        with self._lock:
            self._nthreads = total

    def _on_done(self, future: Any) -> None:
        # Dask's callback thread: only queue it; results are fetched by wait().
        with self._cond:
            if future.key in self._running:
                self._finished.append(future)
                self._cond.notify_all()

    def _on_log_event(self, event: Any) -> None:
        # The client's event loop: a chunk of a running attempt's log.
        try:
            msg = event[1]
            dask_key, offset, data = msg["attempt"], int(msg["offset"]), bytes(msg["data"])
        except Exception:
            return
        with self._lock:
            entry = self._running.get(dask_key)
            if entry is None:
                return  # finished or killed: its outcome brought (or drops) the rest
            # Append only what continues the file exactly: a chunk that comes late or
            # twice is skipped, one after a gap waits for the outcome's full text.
            end = offset + len(data)
            cap = entry.spec.max_log_bytes
            if cap > 0:
                # Only the head streams: past it the worker may cut the log, whose
                # outcome then brings the cut and the tail.
                end = min(end, cap // 2)
            if offset <= entry.written < end:
                chunk = data[entry.written - offset : end - offset]
                failed = append_log(entry.spec.log_path, chunk)
                entry.log_error = entry.log_error or failed
                entry.written = end

    def _collect(self, futures: list[Any]) -> list[AttemptOutcome]:
        entries: list[_Attempt] = []
        with self._lock:
            for f in futures:
                entry = self._running.get(f.key)
                if entry is None or entry.future is not f:
                    continue  # killed meanwhile: its outcome was reported already
                # Out of _running first: from now on no log chunk is written for it.
                del self._running[f.key]
                self._keys.pop(attempt_key(entry.spec), None)
                entries.append(entry)
        if not entries:
            return []
        done = [e for e in entries if e.future.status == "finished"]
        values: dict[str, Any] = {}
        if done:
            try:  # one round trip for all the results at hand
                got = self._client.gather([e.future for e in done])
                values = {e.key: v for e, v in zip(done, got, strict=True)}
            except Exception:
                values = {}  # one of them went wrong: take them one by one below
        out = []
        for entry in entries:
            out.append(self._outcome_of(entry, values))
            entry.future = None  # drop our reference: Dask forgets the key
        return out

    def _outcome_of(self, entry: _Attempt, values: Mapping[str, Any]) -> AttemptOutcome:
        spec, future = entry.spec, entry.future
        if entry.key not in values and future.status == "cancelled":
            # Not by us (a kill forgets the attempt first): the client lost the scheduler,
            # or someone canceled the key on the cluster.
            return self._crashed(entry, "Dask dropped the attempt (its future was canceled)")
        try:
            got, data = values[entry.key] if entry.key in values else future.result()
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":
                error = f"the Dask worker running the attempt died ({one_line(exc)})"
            elif isinstance(exc, OSError):  # distributed's CommClosedError is one
                error = f"the connection to the Dask worker was lost ({one_line(exc)})"
            else:
                error = f"the attempt could not run on Dask ({one_line(exc)})"
            return self._crashed(entry, error)
        failed = finish_log(spec.log_path, entry.written, data) or entry.log_error
        if failed is None:
            return got
        # The log volume of this machine filled up: the log ends with a line saying so,
        # and the attempt's record too.
        mark_log_full(spec.log_path, failed)
        note = f"its volume was full ({failed}): output may be missing"
        earlier = got.extra.get(LOG_NOTE)
        note = f"{earlier}; {note}" if earlier else f"log cut: {note}"
        return dataclasses.replace(got, extra={**got.extra, LOG_NOTE: note})

    def _crashed(self, entry: _Attempt, error: str) -> AttemptOutcome:
        _note(entry.spec.log_path, error)
        return outcome(entry.spec, "crashed", "dask", error=error, retryable=True)

    def _stop(self, entry: _Attempt, killed: AttemptOutcome) -> None:
        client, future = self._client, entry.future
        try:
            if client is None or future is None:
                return
            address = client.run_on_scheduler(dask_scheduler.processing_on, entry.key)
            if address is not None:
                replies = client.run(stop_attempt, entry.key, workers=[address],
                                     on_error="return")
                reply = replies.get(address)
                if reply == "killed" or isinstance(reply, OSError):
                    self._wait_gone(client, address)
                elif reply == "no nanny":
                    log.warning(
                        "cannot stop %s on Dask worker %s: it has no nanny to replace it, "
                        "so the attempt runs to its end (its result is ignored)",
                        entry.key, address,
                    )
                elif isinstance(reply, BaseException) and not isinstance(reply, OSError):
                    # The worker could not run our function: restart it the slow way. (An
                    # OSError means the connection closed: the worker died as asked.)
                    client.restart_workers([address], raise_for_error=False)
        except Exception as exc:
            log.warning("stopping %s on Dask failed: %s", entry.key, one_line(exc))
        finally:
            if future is not None:
                with suppress(Exception):
                    future.cancel()
            with self._cond:
                self._ready.append(killed)
                self._stopping -= 1
                self._cond.notify_all()

    @staticmethod
    def _wait_gone(client: Any, address: str) -> None:
        deadline = time.monotonic() + KILL_GONE
        while time.monotonic() < deadline:
            with suppress(Exception):
                if address not in client.nthreads():
                    return
            time.sleep(0.05)

    def _run_in_thread(self, spec: AttemptSpec) -> AttemptOutcome:
        node = self._pipelines[spec.pipeline].graph.nodes.get(spec.node) \
            if spec.pipeline in self._pipelines else None
        if node is None:
            return outcome(spec, "failed", "thread", retryable=False,
                           error=f"no node {spec.node!r} in pipeline {spec.pipeline!r}")
        if self._driver_results is None:
            self._driver_results = ResultStore(self.results_url)
        return run_attempt(spec, node.task, self._driver_results, capture="thread",
                           worker="thread")

    def _thread_done(self, result: AttemptOutcome) -> None:
        # Under the lock (ThreadAttempts): the outcome of a thread attempt not killed.
        self._ready.append(result)
        self._cond.notify_all()


@atexit.register
def _shutdown_all() -> None:
    for ex in list(_live):
        with suppress(Exception):
            ex.shutdown()
