"""A run's check steps from its results: the newest result of each check counts (a retry
checked again), a mapped task's step takes the worst of its elements with their counts
summed, a declared check without a result is not run, a result of a check the graph no
longer declares is shown too."""

from __future__ import annotations

from datetime import UTC, datetime

from legato.domain.records import CheckResultRecord, NewCheckResult
from legato.services.catalog import NodeView
from legato.services.check_steps import check_steps

AT = datetime(2026, 12, 6, tzinfo=UTC)


def node(name: str, *checks: tuple[str, str], mapped: bool = False) -> NodeView:
    return NodeView(name, name, (), mapped, 0, None, None, "", checks)


def result(id: int, task: str, check: str, outcome: str, severity: str = "block",
           failed: int | None = 0, total: int | None = 3) -> CheckResultRecord:
    return CheckResultRecord(id, NewCheckResult(
        check, None, "r1", "p", task, None, severity, outcome, failed, total, (), outcome, AT,
    ))


def test_steps_follow_the_newest_results_and_the_worst_element() -> None:
    nodes = [
        node("load", ("unique(id)", "block"), ("row_count", "warn")),
        node("fetch", ("not_null(id)", "warn"), mapped=True),
        node("later", ("unique(id)", "block")),
    ]
    results = [  # newest first, as the store gives them
        result(9, "load", "unique(id)", "passed"),
        result(8, "fetch[1]", "not_null(id)", "failed", "warn", failed=2, total=5),
        result(7, "fetch[0]", "not_null(id)", "passed", "warn", failed=0, total=4),
        result(6, "load", "old_check", "error", failed=None, total=None),
        result(5, "load", "unique(id)", "failed", failed=1),
    ]
    steps = check_steps(nodes, results)
    assert [(s.id, s.state) for s in steps] == [
        ("load:unique(id)", "passed"),  # its retry passed
        ("load:row_count", "not_run"),
        ("load:old_check", "error"),
        ("fetch:not_null(id)", "warned"),
        ("later:unique(id)", "not_run"),
    ]
    fetched = steps[3]
    assert (fetched.failed_count, fetched.total_count, fetched.message) == (2, 9, "failed")
    assert steps[1].severity == "warn" and steps[2].failed_count is None
