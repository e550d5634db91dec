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
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Literal

from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.pool import (
    ExecutorError,
    ProcessPool,
    note,
    outcome,
    owned_fds,
)
from legato.executors.threads import ThreadAttempts
from legato.executors.worker import run_attempt
from legato.executors.zygote import SPIN_SECONDS, WorkerConfig
from legato.results.result_store import ResultStore

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline

__all__ = ["ExecutorError", "LocalExecutor"]

_live: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()


class LocalExecutor:
    """Runs attempts on this machine: ``workers`` worker processes, or threads.

    ``mode="thread"`` runs every attempt in a thread of the driver (no isolation: a
    crashing task takes the driver down). ``memory_limit_mb`` (process mode) is the address
    space a task may add to its worker's starting size; past it allocations fail with
    MemoryError, which fails the attempt. Use it from one thread (the driver's loop); only
    ``wake()`` may be called from any thread.
    """

    def __init__(
        self,
        workers: int | None = None,
        results: ResultStore | None = None,
        *,
        mode: Literal["process", "thread"] = "process",
        memory_limit_mb: int | None = None,
    ) -> None:
        if results is None:
            raise TypeError("LocalExecutor needs a ResultStore (results=...)")
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        if memory_limit_mb is not None and memory_limit_mb < 1:
            raise ValueError("memory_limit_mb must be positive")
        self.workers = workers or os.cpu_count() or 1
        self.results = results
        self.mode = mode
        self.memory_limit_mb = memory_limit_mb
        self._pipelines: dict[str, Pipeline] = {}
        self._started = False
        self._closed = False
        self._pool: ProcessPool | None = None
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
            config = WorkerConfig(self._pipelines, self.results, self.memory_limit_mb)
            self._pool = ProcessPool(self.workers, config)  # forks the zygote
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
        if self._pool is not None:
            self._pool.shutdown()
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
        """Pids of the live worker processes."""
        return list(self._pool.by_pid) if self._pool is not None else []

    # -- the Executor protocol -----------------------------------------------------------

    def free_slots(self) -> int:
        """Idle workers (plus those being forked); in thread mode, idle thread slots.

        In process mode, attempts of in_process tasks are not counted: they use threads.
        """
        if not self._started or self._closed:
            return 0
        if self._pool is None:
            return max(0, self.workers - len(self._threads.running))
        return self._pool.free()

    def submit(self, spec: AttemptSpec) -> str:
        """Start an attempt now; returns where it runs: "pid N" (its worker) or "thread"."""
        if not self._started or self._closed:
            raise ExecutorError("the executor is not running")
        if self._pool is None or spec.in_process:
            return self._threads.submit(spec)
        return self._pool.submit(spec)

    def kill(self, run_id: str, task_key: str, attempt: int, status: str, reason: str) -> None:
        """SIGKILL the attempt's worker (a thread is abandoned); wait() reports ``status``.

        ``retryable`` of that outcome is False for "canceled", True otherwise. A no-op if
        the attempt is not running (its own outcome stands).
        """
        key = (run_id, task_key, attempt)
        with self._lock:
            spec = self._threads.running.pop(key, None)
        label = "thread"
        if spec is None:
            found = self._pool.kill(key) if self._pool is not None else None
            if found is None:
                return
            spec, label = found
        note(spec.log_path, f"attempt {status}: {reason}")
        killed = outcome(spec, status, label, error=reason, retryable=status != "canceled")
        with self._lock:
            self._ready.append(killed)

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
        pool = self._pool
        while True:
            with self._lock:
                have = bool(self._ready) or bool(pool and pool.ready)
                running = bool(self._threads.running) or bool(pool and pool.busy)
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
        # this CPU from being halted and woken again (slow on virtual machines).
        assert self._sel is not None
        end = time.monotonic() + min(SPIN_SECONDS, timeout if timeout is not None else SPIN_SECONDS)
        while time.monotonic() < end:
            if self._sel.select(0):
                return True
        return False

    def _pump(self, timeout: float | None) -> None:
        assert self._sel is not None
        for key, _ in self._sel.select(timeout):
            if key.data == "wake":
                with suppress(OSError):  # BlockingIOError once drained
                    while self._wake_r is not None and self._wake_r.recv(4096):
                        pass
            elif self._pool is not None:
                self._pool.on_event(key.data)

    def _take(self) -> list[AttemptOutcome]:
        with self._lock:
            out, self._ready = self._ready, []
        if self._pool is not None and self._pool.ready:
            out += self._pool.ready
            self._pool.ready = []
        return out

    def _run_in_thread(self, spec: AttemptSpec) -> AttemptOutcome:
        try:
            task = self._pipelines[spec.pipeline].graph.nodes[spec.node].task
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
