"""Run and task states, and the only transitions allowed between them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum


class RunState(StrEnum):
    """The life of a run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in _RUN_FINAL


class TaskState(StrEnum):
    """The life of one task run inside a run."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in _TASK_FINAL


_RUN_FINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED})
_TASK_FINAL = frozenset(
    {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.SKIPPED,
        TaskState.UPSTREAM_FAILED,
        TaskState.CANCELED,
    }
)

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELED}),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELED: frozenset(),
}

T = TaskState
TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # A mapped node's own row goes pending -> running when it expands into its elements.
    T.PENDING: frozenset({T.QUEUED, T.RUNNING, T.SKIPPED, T.UPSTREAM_FAILED, T.CANCELED}),
    T.QUEUED: frozenset({T.RUNNING, T.CANCELED}),
    T.RUNNING: frozenset({T.SUCCEEDED, T.FAILED, T.UP_FOR_RETRY, T.SKIPPED, T.CANCELED}),
    # An up_for_retry task fails for good when its retry condition never comes true.
    T.UP_FOR_RETRY: frozenset({T.QUEUED, T.FAILED, T.CANCELED}),
    T.SUCCEEDED: frozenset(),
    T.FAILED: frozenset(),
    T.SKIPPED: frozenset(),
    T.UPSTREAM_FAILED: frozenset(),
    T.CANCELED: frozenset(),
}
del T


# An operator may mark a task of a finished run as succeeded or failed (API and UI). These are
# the only such changes, apart from the engine's own table above; the run's state then follows
# its tasks through RUN_MARKS.
_OK, _BAD = TaskState.SUCCEEDED, TaskState.FAILED
TASK_MARKS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.SUCCEEDED: frozenset({_BAD}),
    TaskState.FAILED: frozenset({_OK}),
    TaskState.SKIPPED: frozenset({_OK, _BAD}),
    TaskState.UPSTREAM_FAILED: frozenset({_OK, _BAD}),
    TaskState.CANCELED: frozenset({_OK, _BAD}),
}
RUN_MARKS: dict[RunState, frozenset[RunState]] = {
    RunState.SUCCEEDED: frozenset({RunState.FAILED}),
    RunState.FAILED: frozenset({RunState.SUCCEEDED}),
    RunState.CANCELED: frozenset({RunState.SUCCEEDED, RunState.FAILED}),
}


class BackfillState(StrEnum):
    """The life of a backfill."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (BackfillState.COMPLETED, BackfillState.CANCELED)


B = BackfillState
BACKFILL_TRANSITIONS: dict[BackfillState, frozenset[BackfillState]] = {
    B.RUNNING: frozenset({B.PAUSED, B.COMPLETED, B.CANCELED}),
    B.PAUSED: frozenset({B.RUNNING, B.CANCELED}),
    B.COMPLETED: frozenset(),
    B.CANCELED: frozenset(),
}
del B


class InvalidTransition(Exception):
    """A state change that the transition table does not allow."""


def check_run_transition(old: RunState, new: RunState) -> None:
    """Raise InvalidTransition unless a run may go from ``old`` to ``new``."""
    if new not in RUN_TRANSITIONS[old]:
        raise InvalidTransition(f"run cannot go from {old} to {new}")


def check_task_transition(old: TaskState, new: TaskState) -> None:
    """Raise InvalidTransition unless a task run may go from ``old`` to ``new``."""
    if new not in TASK_TRANSITIONS[old]:
        raise InvalidTransition(f"task cannot go from {old} to {new}")


def check_task_mark(old: TaskState, new: TaskState) -> None:
    """Raise InvalidTransition unless an operator may mark a ``old`` task as ``new``."""
    if new not in TASK_MARKS.get(old, frozenset()):
        if not old.finished:
            raise InvalidTransition(f"task is {old}; only finished tasks can be marked")
        raise InvalidTransition(f"task is {old} already")
    return None


def run_state_after_marks(old: RunState, tasks: list[TaskState]) -> RunState:
    """The state a finished run takes once its tasks are in ``tasks`` after a mark."""
    done_ok = (TaskState.SUCCEEDED, TaskState.SKIPPED)
    if all(t in done_ok for t in tasks):
        new = RunState.SUCCEEDED
    elif any(t in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) for t in tasks):
        new = RunState.FAILED
    else:
        return old
    if new != old and new not in RUN_MARKS.get(old, frozenset()):
        raise InvalidTransition(f"run cannot be marked from {old} to {new}")
    return new


def judge_mark(
    run: RunState, tasks: Mapping[str, TaskState], task_key: str, new: TaskState
) -> RunState:
    """The run's state once an operator marks ``task_key`` (of ``tasks``) as ``new``.

    Raises InvalidTransition when the run has not finished or the mark does not fit.
    """
    if not run.finished:
        raise InvalidTransition(f"run is {run}; tasks can be marked once it has finished")
    check_task_mark(tasks[task_key], new)
    return run_state_after_marks(run, [new if k == task_key else s for k, s in tasks.items()])


#: How a store learns the rule for a mark, which it applies inside its transaction.
MarkJudge = Callable[[RunState, Mapping[str, TaskState], str, TaskState], RunState]


def check_backfill_transition(old: BackfillState, new: BackfillState) -> None:
    """Raise InvalidTransition unless a backfill may go from ``old`` to ``new``."""
    if new not in BACKFILL_TRANSITIONS[old]:
        raise InvalidTransition(f"backfill cannot go from {old} to {new}")
