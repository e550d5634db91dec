"""A run's checks as steps of their own: one per check of each task, after it in the graph,
with the outcome the run's results give it (what the run page draws and the API lists).

A check is evaluated inside its task's attempt (so that a blocking one fails the task before
anything downstream reads its output); a step is how that evaluation is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.domain.records import CheckResultRecord, NewCheckResult
    from legato.services.catalog import NodeView

#: The most results a run's steps are read from: far more than any run's tasks declare.
RUN_RESULTS = 10_000
#: A step's states, from the one that matters most. A mapped task's step takes the worst
#: of its elements'.
STATES = ("error", "failed", "warned", "passed", "not_run")


@dataclass(frozen=True)
class CheckStep:
    """One check of one task in a run: ``state`` is ``passed``, ``failed`` (a blocking check
    that failed), ``warned`` (a warning check that failed), ``error`` (it could not be
    evaluated) or ``not_run`` (its task has not produced its output, or failed before)."""

    id: str  # "NODE:CHECK", unique in the run's graph beside the nodes' ids
    node: str
    name: str
    severity: str
    state: str
    failed_count: int | None = None
    total_count: int | None = None
    message: str = ""


def step_id(node: str, check: str) -> str:
    """The id of ``check``'s step after ``node``."""
    return f"{node}:{check}"


def check_steps(
    nodes: Iterable[NodeView], results: Sequence[CheckResultRecord]
) -> tuple[CheckStep, ...]:
    """The steps of the checks ``nodes`` declare (and of any other check with results), in
    the nodes' order, each in the state of its newest results (``results`` newest first)."""
    newest: dict[tuple[str, str], NewCheckResult] = {}
    for rec in results:
        r = rec.result
        newest.setdefault((r.task_key, r.check_name), r)  # a retry or resume checked again
    by_check: dict[tuple[str, str], list[NewCheckResult]] = {}
    for (task_key, name), r in newest.items():
        node = task_key.split("[", 1)[0]  # a mapped node's elements are one step
        by_check.setdefault((node, name), []).append(r)
    steps: list[CheckStep] = []
    for n in nodes:
        declared = dict(n.checks)
        found = [name for (node, name) in by_check if node == n.id and name not in declared]
        for name in [*declared, *found]:
            got = by_check.get((n.id, name), [])
            severity = got[0].severity if got else declared[name]
            steps.append(_step(n.id, name, severity, got))
    return tuple(steps)


def _step(node: str, name: str, severity: str, got: list[NewCheckResult]) -> CheckStep:
    if not got:
        return CheckStep(step_id(node, name), node, name, severity, "not_run")
    state = min((_state(r) for r in got), key=STATES.index)
    failed = [r.failed_count for r in got if r.failed_count is not None]
    totals = [r.total_count for r in got if r.total_count is not None]
    worst = next(r for r in got if _state(r) == state)
    return CheckStep(
        step_id(node, name), node, name, severity, state,
        sum(failed) if failed else None, sum(totals) if totals else None, worst.message,
    )


def _state(r: NewCheckResult) -> str:
    if r.outcome == "failed":
        return "warned" if r.severity == "warn" else "failed"
    return r.outcome  # passed | error
