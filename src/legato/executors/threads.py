"""Attempts run in threads of the driver: thread mode, and in-process tasks in process mode."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.pool import AttemptKey, attempt_key


class ThreadRunner:
    """Runs each submitted attempt at once in a daemon thread, reusing idle threads.

    Not a ThreadPoolExecutor: a killed attempt cannot be stopped and keeps its thread, and
    in a fixed pool it would hold back the next submissions; here a new thread starts when
    none is idle, so the caller alone bounds concurrency. Daemon threads, so that a hung
    task does not keep the interpreter from exiting.
    """

    def __init__(
        self,
        run: Callable[[AttemptSpec], AttemptOutcome],
        done: Callable[[AttemptSpec, AttemptOutcome], None],
        name: str = "legato-attempt",
    ) -> None:
        self._run = run
        self._done = done
        self._name = name
        self._jobs: queue.SimpleQueue[AttemptSpec | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._stopped = False

    def submit(self, spec: AttemptSpec) -> None:
        """Start ``spec`` now in an idle thread or a new one."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the thread runner is stopped")
            if self._idle:
                self._idle -= 1
            else:
                self._threads += 1
                threading.Thread(
                    target=self._loop, name=f"{self._name}-{self._threads}", daemon=True
                ).start()
        self._jobs.put(spec)

    def _loop(self) -> None:
        while True:
            spec = self._jobs.get()
            if spec is None:
                return
            outcome = self._run(spec)  # never raises
            try:
                self._done(spec, outcome)
            finally:
                with self._lock:
                    self._idle += 1

    def stop(self) -> None:
        """Let every thread end once it is idle; does not wait for running attempts."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)


class ThreadAttempts:
    """An executor's attempts running in threads of the driver, until each is reported.

    ``running`` (attempt key -> spec) is read and changed under ``lock``, the executor's
    own, so that taking an attempt out and queuing its outcome are one step for the
    executor's ``wait()``. ``kill()`` abandons an attempt by popping it from ``running``
    (under ``lock``): its thread's outcome is then dropped when it comes. ``run(spec)`` runs
    an attempt in a thread and never raises; ``report(outcome)`` is called under ``lock``
    with the outcome of an attempt still running, then ``after()``, if given, once the
    lock is released. Threads start with the first submission.
    """

    def __init__(
        self,
        lock: AbstractContextManager[Any],
        run: Callable[[AttemptSpec], AttemptOutcome],
        report: Callable[[AttemptOutcome], None],
        after: Callable[[], None] | None = None,
    ) -> None:
        self.running: dict[AttemptKey, AttemptSpec] = {}
        self._lock = lock
        self._run = run
        self._report = report
        self._after = after
        self._runner: ThreadRunner | None = None

    def submit(self, spec: AttemptSpec) -> str:
        """Start ``spec`` in a thread now; returns "thread" (where it runs)."""
        if self._runner is None:
            self._runner = ThreadRunner(self._run, self._done)
        with self._lock:
            self.running[attempt_key(spec)] = spec
        self._runner.submit(spec)
        return "thread"

    def stop(self) -> None:
        """Let the threads end once idle, and close the resources attempts opened in this
        process; does not wait for running attempts."""
        if self._runner is not None:
            self._runner.stop()
            from legato.resources.opened import close_all

            close_all()

    def _done(self, spec: AttemptSpec, result: AttemptOutcome) -> None:
        key = attempt_key(spec)
        with self._lock:
            if self.running.get(key) is not spec:
                return  # killed meanwhile: its outcome was reported already
            del self.running[key]
            self._report(result)
        if self._after is not None:
            self._after()
