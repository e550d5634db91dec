"""The transition tables: what may follow what, and that anything else is refused."""

from __future__ import annotations

import pytest

from legato.domain.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    InvalidTransition,
    RunState,
    TaskState,
    check_run_transition,
    check_task_transition,
)


def test_every_state_has_a_row() -> None:
    assert set(RUN_TRANSITIONS) == set(RunState)
    assert set(TASK_TRANSITIONS) == set(TaskState)


def test_final_states_have_no_way_out() -> None:
    for state, nexts in TASK_TRANSITIONS.items():
        assert (not nexts) == state.finished
    for rstate, rnexts in RUN_TRANSITIONS.items():
        assert (not rnexts) == rstate.finished


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TaskState.SUCCEEDED, TaskState.RUNNING),
        (TaskState.PENDING, TaskState.SUCCEEDED),
        (TaskState.QUEUED, TaskState.SUCCEEDED),
        (TaskState.FAILED, TaskState.QUEUED),
    ],
)
def test_invalid_task_transitions_raise(old: TaskState, new: TaskState) -> None:
    with pytest.raises(InvalidTransition, match=f"from {old} to {new}"):
        check_task_transition(old, new)


def test_retry_path_is_allowed() -> None:
    for a, b in [
        (TaskState.RUNNING, TaskState.UP_FOR_RETRY),
        (TaskState.UP_FOR_RETRY, TaskState.QUEUED),
        (TaskState.QUEUED, TaskState.RUNNING),
    ]:
        check_task_transition(a, b)


def test_run_cannot_restart() -> None:
    with pytest.raises(InvalidTransition):
        check_run_transition(RunState.FAILED, RunState.RUNNING)
