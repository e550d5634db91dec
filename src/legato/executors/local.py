"""The local executor: a pool of worker processes forked by a zygote, or threads.

Process mode (the default) keeps ``workers`` processes alive; each runs one attempt at a
time. A task that hangs, segfaults, calls os._exit or eats all memory loses only its own
attempt: its worker is killed or found dead and a new one is forked in its place.
Per attempt the driver pickles the spec onto the worker's socket and reads the outcome back
(one epoll wait); the worker redirects its output to the attempt's log and runs the task.

Attempts of ``in_process`` tasks, and all attempts in thread mode, run in threads of the
driver. In process mode those threads are *not* counted in ``free_slots()``: they are meant
for light tasks and do not take a process slot (the engine may still wait for a free slot
before submitting them). A thread cannot be killed: ``kill()`` reports the outcome at once
and the thread's own result is ignored when it comes, though the task keeps running to its
end (and may still write its result file).
"""

from __future__ import annotations

import atexit
import os
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from legato.executors.interface import BATCH_LOST, AttemptOutcome, AttemptSpec
from legato.executors.pool import (
    ExecutorError,
    ProcessPool,
    note,
    outcome,
    owned_fds,
)
from legato.executors.spin import Spinner
from legato.executors.threads import ThreadAttempts
from legato.executors.worker import run_attempt
from legato.executors.zygote import WorkerConfig
from legato.results.result_store import ResultStore

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline

__all__ = ["ExecutorError", "LocalExecutor"]

_live: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()
#: The most attempts sent to a worker in one message (see batch_size).
MAX_BATCH = 500


@dataclass(eq=False)
class _Generation:
    """One load of the project's code, and (process mode) the workers forked with it."""

    pipelines: dict[str, Pipeline]
    pool: ProcessPool | None

    def has(self, pipeline: str, code_version: str) -> bool:
        pipe = self.pipelines.get(pipeline)
        return pipe is not None and pipe.code_version == code_version


class LocalExecutor:
    """Runs attempts on this machine: ``workers`` worker processes, or threads.

    ``mode="thread"`` runs every attempt in a thread of the driver (no isolation: a
    crashing task takes the driver down). ``memory_limit_mb`` (process mode) is the address
    space a task may add to its worker's starting size; past it allocations fail with
    MemoryError, which fails the attempt. ``max_tasks_per_worker`` and
    ``max_worker_memory_mb`` (process mode) replace a worker that has run that many
    attempts or grown that big, after its attempt (``executors/recycle.py``). Use it from
    one thread (the driver's loop); only
    ``wake()`` may be called from any thread.
    """

    def __init__(
        self,
        workers: int | None = None,
        results: ResultStore | None = None,
        *,
        mode: Literal["process", "thread"] = "process",
        memory_limit_mb: int | None = None,
        max_tasks_per_worker: int | None = None,
        max_worker_memory_mb: int | None = None,
    ) -> None:
        if results is None:
            raise TypeError("LocalExecutor needs a ResultStore (results=...)")
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        for name, limit in (("memory_limit_mb", memory_limit_mb),
                            ("max_tasks_per_worker", max_tasks_per_worker),
                            ("max_worker_memory_mb", max_worker_memory_mb)):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be positive")
        self.workers = workers or os.cpu_count() or 1
        self.results = results
        self.mode = mode
        self.memory_limit_mb = memory_limit_mb
        self.max_tasks_per_worker = max_tasks_per_worker
        self.max_worker_memory_mb = max_worker_memory_mb
        self._pipelines: dict[str, Pipeline] = {}
        self._started = False
        self._closed = False
        self._pool: ProcessPool | None = None  # the current generation's
        # Every load of the code with runs still on it, the current one last (see reload()).
        self._gens: list[_Generation] = []
        self._next: dict[str, Pipeline] | None = None  # a reload not acted on yet
        self._sel: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        # Thread attempts finish, and wake() is called, in other threads: these three (and
        # the thread attempts' bookkeeping) are guarded by the lock.
        self._lock = threading.Lock()
        self._ready: list[AttemptOutcome] = []
        self._threads = ThreadAttempts(
            self._lock, self._run_in_thread, self._thread_done, self._thread_wake
        )
        self._woken = False
        self._spinner = Spinner()

    # -- life cycle ----------------------------------------------------------------------

    def start(self, pipelines: Mapping[str, Pipeline], *, wait: bool = True) -> None:
        """Fork the zygote and pre-warm ``workers`` worker processes (process mode).

        Call it after the project is imported, before the driver starts any thread, from
        the thread that outlives the executor (the main thread). ``wait=False`` returns
        while the workers are still being forked.
        """
        if self._started:
            raise ExecutorError("the executor is already started")
        self._started = True
        self._pipelines = dict(pipelines)
        if self.mode == "process":
            config = self._worker_config(self._pipelines)
            # Forks the zygote. `legato up` has bound its web port by then: the zygote must
            # not keep a copy of it (nor of any other socket of the driver).
            self._pool = ProcessPool(self.workers, config, close_sockets=True)
        self._gens = [_Generation(self._pipelines, self._pool)]
        # Created after the fork, so the zygote never holds them.
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        owned_fds.update((self._wake_r.fileno(), self._wake_w.fileno()))
        if hasattr(self._sel, "fileno"):  # epoll, kqueue
            owned_fds.add(self._sel.fileno())
        _live.add(self)
        if self._pool is not None:
            try:
                self._pool.start(self._sel, wait=wait)
            except BaseException:
                self.shutdown()
                raise

    def shutdown(self) -> None:
        """Stop workers, the zygote and threads; attempts still running are dropped.

        Idempotent; also run at interpreter exit for executors not shut down.
        """
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        for gen in self._gens:
            if gen.pool is not None:
                gen.pool.shutdown()
        self._threads.stop()
        with self._lock:  # wake() may be sending from another thread
            for s in (self._wake_r, self._wake_w):
                if s is not None:
                    owned_fds.discard(s.fileno())
                    s.close()
        if self._sel is not None:
            if hasattr(self._sel, "fileno"):
                owned_fds.discard(self._sel.fileno())
            self._sel.close()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def zygote_pid(self) -> int | None:
        """The fork server's pid (process mode, while running)."""
        return (self._pool.zygote.pid or None) if self._pool is not None else None

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (of every generation)."""
        return [pid for pool in self._pools() for pid in pool.by_pid]

    @property
    def generations(self) -> int:
        """How many loads of the code have workers or runs here (1 until a reload)."""
        return len(self._gens)

    # -- new code ------------------------------------------------------------------------

    def reload(self, pipelines: Mapping[str, Pipeline]) -> None:
        """Run attempts of these (newly loaded) pipelines from now on. Thread-safe.

        Call it in the process that has just imported the new code. The next call of the
        driver's loop forks a new zygote from it (process mode) and makes it current; the
        workers of the older code stay for the attempts of the runs that started on it (an
        ``AttemptSpec`` names its code version) until ``retain`` says no run needs them.
        """
        with self._lock:
            self._next = dict(pipelines)
        self.wake()

    def retain(self, versions: Collection[str]) -> None:
        """Shut the workers of older code down once no run in flight (whose code versions
        are ``versions``) and no attempt needs them."""
        self._activate()
        keep = set(versions)
        for gen in self._gens[:-1]:
            needed = any(p.code_version in keep for p in gen.pipelines.values())
            if needed or (gen.pool is not None and gen.pool.busy):
                continue
            if gen.pool is not None:
                gen.pool.shutdown()
            self._gens.remove(gen)

    def _activate(self) -> None:
        # From the driver's thread only: the zygote is forked from the thread that outlives it.
        with self._lock:
            pipelines, self._next = self._next, None
        if pipelines is None or not self._started or self._closed:
            return
        pool = None
        if self.mode == "process":
            assert self._sel is not None
            config = self._worker_config(pipelines)
            # This process may serve HTTP and hold connections by now.
            pool = ProcessPool(self.workers, config, close_sockets=True)
            if self._pool is not None:
                self._pool.retire()
            pool.start(self._sel, wait=False)
        self._pipelines = pipelines
        self._pool = pool
        self._gens.append(_Generation(pipelines, pool))

    def _pools(self) -> list[ProcessPool]:
        return [g.pool for g in self._gens if g.pool is not None]

    def _generation(self, spec: AttemptSpec) -> _Generation:
        # The load the attempt's run started on; the current one if the spec names none.
        if spec.code_version:
            for gen in reversed(self._gens):
                if gen.has(spec.pipeline, spec.code_version):
                    return gen
        return self._gens[-1]

    # -- the Executor protocol -----------------------------------------------------------

    def free_slots(self) -> int:
        """Idle workers (plus those being forked); in thread mode, idle thread slots.

        In process mode, attempts of in_process tasks are not counted: they use threads.
        """
        if not self._started or self._closed:
            return 0
        self._activate()
        if self._pool is None:
            return max(0, self.workers - len(self._threads.running))
        # Workers busy with attempts of older code count against ``workers`` too.
        older = sum(len(pool.busy) for pool in self._pools() if pool is not self._pool)
        return max(0, self._pool.free() - older)

    def _worker_config(self, pipelines: Mapping[str, Pipeline]) -> WorkerConfig:
        return WorkerConfig(
            pipelines,
            self.results,
            self.memory_limit_mb,
            max_tasks=self.max_tasks_per_worker,
            max_memory_mb=self.max_worker_memory_mb,
        )

    def submit(self, spec: AttemptSpec) -> str:
        """Start an attempt now; returns where it runs: "pid N" (its worker) or "thread"."""
        if not self._started or self._closed:
            raise ExecutorError("the executor is not running")
        self._activate()
        pool = self._generation(spec).pool
        if pool is None or spec.in_process:
            return self._threads.submit(spec)
        return pool.submit(spec)

    def batch_size(self, queued: int, at_once: int = 1) -> int:
        """Attempts per message to a worker (a map's elements, a fan's tasks): a share of
        those waiting small enough that every worker gets several batches (the load stays
        balanced, the run's progress is written as it goes), at most MAX_BATCH; for an async
        task's attempts, as many as it runs at once. 1 in thread mode."""
        if self.mode != "process":
            return 1
        size = min(MAX_BATCH, queued // (4 * self.workers))
        if at_once > 1:
            # Coroutines run side by side: a batch as big as the concurrency fills the loop,
            # and the queue shared among the workers keeps each of them busy.
            size = max(size, min(MAX_BATCH, at_once, -(-queued // self.workers)))
        return max(1, size)

    def submit_batch(self, specs: Sequence[AttemptSpec]) -> str:
        """Start ``specs`` (attempts of one run) on one worker, one after another."""
        if not self._started or self._closed:
            raise ExecutorError("the executor is not running")
        self._activate()
        pool = self._generation(specs[0]).pool
        if pool is None or specs[0].in_process:
            for spec in specs:
                self._threads.submit(spec)
            return "thread"
        return pool.submit_batch(specs)

    def kill(self, run_id: str, task_key: str, attempt: int, status: str, reason: str) -> None:
        """SIGKILL the attempt's worker (a thread is abandoned); wait() reports ``status``.

        ``retryable`` of that outcome is False for "canceled", True otherwise. A no-op if
        the attempt is not running (its own outcome stands).
        """
        key = (run_id, task_key, attempt)
        with self._lock:
            spec = self._threads.running.pop(key, None)
        label = "thread"
        mates: list[AttemptSpec] = []
        if spec is None:
            found = None
            for pool in self._pools():
                found = pool.kill(key)
                if found is not None:
                    break
            if found is None:
                return
            spec, label, mates = found
        note(spec.log_path, f"attempt {status}: {reason}")
        killed = [outcome(spec, status, label, error=reason, retryable=status != "canceled")]
        # The rest of its batch stopped with it, through no fault of their own.
        why = f"interrupted: {task_key} of its batch was stopped ({status})"
        killed.extend(outcome(m, "interrupted", label, error=why, retryable=True,
                              extra={BATCH_LOST: True}) for m in mates)
        with self._lock:
            self._ready.extend(killed)

    def wait(self, timeout: float | None) -> list[AttemptOutcome]:
        """Outcomes of finished attempts: all that are ready once one is, or [] after timeout.

        Returns [] at once when nothing runs and ``timeout`` is None (it would never end),
        and as soon as ``wake()`` was called (during this wait or since the last one).
        Raises ExecutorError when the zygote died and no worker is left.
        """
        if not self._started or self._closed:
            with self._lock:
                self._woken = False
            return self._take()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        self._activate()
        pool = self._pool
        pools = self._pools()
        while True:
            with self._lock:
                have = bool(self._ready) or any(p.ready for p in pools)
                running = bool(self._threads.running) or any(p.busy for p in pools)
                woken = self._woken
            if not have and not running and deadline is None:
                if pool is not None:
                    pool.check_alive()
                with self._lock:
                    self._woken = False
                return []
            wait_for: float | None
            if have or woken:
                wait_for = 0.0  # collect whatever else is ready too
            else:
                wait_for = None if deadline is None else max(0.0, deadline - time.monotonic())
                if self._spin(wait_for):
                    wait_for = 0.0
            self._pump(wait_for)
            out = self._take()
            # The byte a wake-up sent may have been drained by _pump along with the ones of
            # finished thread attempts: the flag, not the socket, says whether to return.
            with self._lock:
                woken, self._woken = self._woken, False
            if out or woken:
                return out
            if deadline is not None and time.monotonic() >= deadline:
                if pool is not None:
                    pool.check_alive()
                return []

    def wake(self) -> None:
        """Make a blocked ``wait()`` (or else the next one) return promptly. Thread-safe."""
        # Under the lock, so that shutdown() cannot close the socket in the middle of it.
        with self._lock:
            self._woken = True
            if self._wake_w is not None:
                with suppress(OSError):  # full (a wake-up is pending anyway) or closed
                    self._wake_w.send(b"\0")

    # -- internals -----------------------------------------------------------------------

    def _spin(self, timeout: float | None) -> bool:
        # Short attempts finish within a millisecond or two: watching for them briefly keeps
        # this CPU from being halted and woken again (slow on virtual machines), unless
        # other processes want the CPU (see executors/spin.py).
        sel = self._sel
        assert sel is not None
        return self._spinner.spin(lambda: bool(sel.select(0)), timeout)

    def _pump(self, timeout: float | None) -> None:
        assert self._sel is not None
        for key, _ in self._sel.select(timeout):
            if key.data == "wake":
                with suppress(OSError):  # BlockingIOError once drained
                    while self._wake_r is not None and self._wake_r.recv(4096):
                        pass
            else:
                for pool in self._pools():
                    pool.on_event(key.data)

    def _take(self) -> list[AttemptOutcome]:
        with self._lock:
            out, self._ready = self._ready, []
        for pool in self._pools():
            if pool.ready:
                out += pool.ready
                pool.ready = []
        return out

    def _run_in_thread(self, spec: AttemptSpec) -> AttemptOutcome:
        try:
            task = self._generation(spec).pipelines[spec.pipeline].graph.nodes[spec.node].task
        except KeyError:
            return outcome(
                spec,
                "failed",
                "thread",
                retryable=False,
                error=f"no node {spec.node!r} in pipeline {spec.pipeline!r}",
            )
        return run_attempt(spec, task, self.results, capture="thread", worker="thread")

    def _thread_done(self, result: AttemptOutcome) -> None:
        self._ready.append(result)  # under the lock (ThreadAttempts)

    def _thread_wake(self) -> None:
        if self._wake_w is not None:
            with suppress(OSError):  # full (a wake-up is pending anyway) or closed
                self._wake_w.send(b"\0")


@atexit.register
def _shutdown_all() -> None:
    for ex in list(_live):
        with suppress(Exception):
            ex.shutdown()
