"""What a test run gives back: each task's state, output, error, traceback and log."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from legato.domain.states import RunState, TaskState

_ELEMENT = re.compile(r"^(?P<node>.+)\[(?P<index>\d+)\]$")


class UnknownTask(KeyError):
    """A test asked for a task the run does not have; the message lists the run's tasks."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class NoOutput(LookupError):
    """A task that did not succeed has no output; the message says what happened to it."""


@dataclass(frozen=True)
class AttemptResult:
    """One finished attempt of a task: how it ended, its error and traceback, its log."""

    number: int
    outcome: str  # "succeeded", "failed", "timeout", "canceled", ...
    error: str | None
    traceback: str | None
    log: str


_MISSING = object()


@dataclass(frozen=True)
class TaskResult:
    """One task of a test run (or one element of a mapped task: key ``"fetch[2]"``).

    ``output`` is the value the task returned, read back from the result store as its
    downstream tasks got it; reading it for a task that did not succeed raises NoOutput.
    ``error`` and ``traceback`` are those of its last failed attempt; ``log`` holds every
    attempt's log, oldest first.
    """

    key: str
    node: str
    state: TaskState
    attempts: tuple[AttemptResult, ...]
    error: str | None
    traceback: str | None
    log: str
    _output: Any = field(default=_MISSING, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.state == TaskState.SUCCEEDED

    @property
    def output(self) -> Any:
        """What the task returned (NoOutput when it did not succeed)."""
        if self._output is _MISSING:
            why = f": {self.error}" if self.error else ""
            raise NoOutput(f"task {self.key!r} has no output: it is {self.state}{why}")
        return self._output


class TaskResults(Mapping[str, TaskResult]):
    """A run's tasks by key, in graph order. An unknown key raises UnknownTask naming the
    closest key and listing them all."""

    def __init__(self, pipeline: str, tasks: Mapping[str, TaskResult]) -> None:
        self._pipeline = pipeline
        self._tasks = dict(tasks)

    def __getitem__(self, key: str) -> TaskResult:
        found = self._tasks.get(key)
        if found is None:
            raise self.unknown(key)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def unknown(self, key: str) -> UnknownTask:
        """The error for asking after ``key``."""
        names = list(self._tasks)
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return UnknownTask(
            f"pipeline {self._pipeline!r} has no task {key!r}{hint} "
            f"(tasks: {', '.join(names) or 'none'})"
        )

    def __repr__(self) -> str:
        return f"TaskResults({', '.join(f'{k}={v.state}' for k, v in self._tasks.items())})"


@dataclass(frozen=True)
class PipelineResult:
    """A finished test run: its state and, in ``tasks``, each task's result."""

    run_id: str
    pipeline: str
    state: RunState
    params: Mapping[str, Any]
    partition: str | None
    error: str | None
    tasks: TaskResults

    @property
    def succeeded(self) -> bool:
        """Whether the run (every task in it) succeeded."""
        return self.state == RunState.SUCCEEDED

    @property
    def failed_tasks(self) -> list[TaskResult]:
        """The tasks that failed (their last attempt failed or timed out), in graph order."""
        return [t for t in self.tasks.values() if t.state == TaskState.FAILED]

    @property
    def log(self) -> str:
        """Every task's log, in graph order, each under a ``== task ==`` line."""
        return "".join(f"== {t.key} ==\n{t.log}" for t in self.tasks.values() if t.log)

    def output_of(self, task: str) -> Any:
        """What ``task`` returned; for a mapped task, the list of its elements' outputs.

        UnknownTask for a name the pipeline has no task for; NoOutput when it did not
        succeed.
        """
        if task in self.tasks:
            elements = self._elements(task)
            if elements:
                return [self.tasks[k].output for k in elements]
            return self.tasks[task].output
        raise self.tasks.unknown(task)

    def _elements(self, node: str) -> list[str]:
        found = []
        for key in self.tasks:
            m = _ELEMENT.match(key)
            if m is not None and m["node"] == node:
                found.append((int(m["index"]), key))
        return [key for _, key in sorted(found)]

    def raise_for_failure(self) -> PipelineResult:
        """Raise RunFailed, showing each failed task's traceback, unless the run succeeded;
        returns this result so that it can be chained."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        if self.succeeded:
            return self
        parts = [f"run {self.run_id} of {self.pipeline!r} is {self.state}"]
        if self.error:
            parts[0] += f": {self.error}"
        for t in self.failed_tasks:
            parts.append(f"-- task {t.key!r} {t.state}: {t.error}\n{t.traceback or ''}".rstrip())
        raise RunFailed("\n".join(parts), self)

    def __repr__(self) -> str:
        return f"<PipelineResult {self.pipeline} {self.run_id} {self.state}>"


class RunFailed(AssertionError):
    """A test run did not succeed (``PipelineResult.raise_for_failure``): an AssertionError,
    so pytest shows it as a failed check with each failed task's traceback."""

    def __init__(self, message: str, result: PipelineResult) -> None:
        super().__init__(message)
        self.result = result


__all__ = [
    "AttemptResult",
    "NoOutput",
    "PipelineResult",
    "RunFailed",
    "TaskResult",
    "TaskResults",
    "UnknownTask",
]
