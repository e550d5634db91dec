"""What a worker process carries from one attempt to the next, and when it is replaced.

A worker runs attempt after attempt, for as long as its driver lives: months under a daemon.
Two things must not leak from one task into the next:

* the working directory and the environment variables: a task that calls ``os.chdir`` or
  sets ``os.environ["X"]`` changes the process, so the worker puts both back as they were
  when it started, after every attempt (also inside a batch);
* memory and everything else a task may leave behind (caches, module state, threads): a
  worker that has run ``max_tasks`` attempts, or whose resident memory has grown by more
  than ``max_memory_mb`` since it started, leaves after sending its last outcome (wrapped
  in ``Retiring``, so that the driver gives it no more work), and the zygote forks a fresh
  one, the project already imported: about a millisecond. As Celery's ``max-tasks-per-child`` and
  ``max-memory-per-child``. A task may set its own ``max_calls_per_worker``: a worker that
  has run that many attempts of it is replaced too (Ray's ``max_calls``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.definitions.task import Task

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Retiring:
    """A worker's last reply: ``reply`` as it would have sent it, then it leaves."""

    reply: Any
    why: str


def resident_bytes() -> int:
    """This process's resident memory (RSS), from /proc; 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class WorkerLife:
    """One worker process's state between attempts (see the module docstring)."""

    def __init__(self, max_tasks: int | None = None, max_memory_mb: int | None = None) -> None:
        self.max_tasks = max_tasks
        self.max_memory = None if max_memory_mb is None else max_memory_mb * 1024 * 1024
        self.attempts = 0
        # Task function -> attempts run, for tasks with a limit (a task called under several
        # names with .named() is one function).
        self._calls: dict[Any, int] = {}
        self._spent_by: str | None = None  # why a task's own limit ends this worker
        # Growth, not size: a worker forked from a big process (a daemon with its web server)
        # starts with all of that resident, shared with its parent.
        self._start_size = resident_bytes() if max_memory_mb is not None else 0
        self._cwd = os.getcwd()
        # os.environ's own dict (bytes to bytes): comparing it costs about a microsecond,
        # which matters between the tiny attempts of a batch.
        self._environ: dict[bytes, bytes] = getattr(os.environ, "_data", {})
        self._saved_environ = dict(self._environ)
        self._saved = dict(os.environ)

    def after_attempt(self) -> None:
        """An attempt ended: count it, and put the working directory and the environment
        back as they were."""
        self.attempts += 1
        if self._environ != self._saved_environ:
            os.environ.clear()
            os.environ.update(self._saved)
        try:
            here: str | None = os.getcwd()
        except OSError:  # the task removed the folder it moved to
            here = None
        if here != self._cwd:
            with suppress(OSError):
                os.chdir(self._cwd)

    def ran(self, tasks: Sequence[Task]) -> None:
        """Count the attempts just run (one task each) against their tasks' own limits."""
        for task in tasks:
            limit = task.max_calls_per_worker
            if limit is None:
                continue
            calls = self._calls[task.fn] = self._calls.get(task.fn, 0) + 1
            if calls >= limit and self._spent_by is None:
                name = getattr(task.fn, "__name__", task.name)
                self._spent_by = (f"ran {calls} attempts of task {name} "
                                  f"(max_calls_per_worker = {limit})")

    def spent(self) -> str | None:
        """Why this worker should be replaced now, or None."""
        if self._spent_by is not None:
            return self._spent_by
        if self.max_tasks is not None and self.attempts >= self.max_tasks:
            return f"ran {self.attempts} attempts (max_tasks_per_worker = {self.max_tasks})"
        if self.max_memory is not None:
            grown = resident_bytes() - self._start_size
            if grown > self.max_memory:
                return (f"grew by {grown // (1024 * 1024)} MB "
                        f"(max_worker_memory_mb = {self.max_memory // (1024 * 1024)})")
        return None
