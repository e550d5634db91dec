"""A run narrowed to some tasks and their upstream: the targets run, an upstream task is
reused only when its older row may be and all of its own upstream are reused, everything
else is skipped; the rows say so."""

from __future__ import annotations

from legato import pipeline, task
from legato.domain.records import TaskRunRecord
from legato.domain.states import TaskState
from legato.engine.narrowing import narrow, narrowed_rows


@task
def source() -> int:
    return 1


@task
def left(x: int) -> int:
    return x


@task
def right(x: int) -> int:
    return x


@task
def join(a: int, b: int) -> int:
    return a + b


@task
def side(x: int) -> int:
    return x


@pipeline
def diamond():
    s = source()
    join(left(s), right(s))
    side(s)


def test_targets_run_upstream_reused_when_usable_and_the_rest_skipped() -> None:
    graph = diamond.graph
    every = narrow(graph, ["join"], lambda node: True)
    assert (every.run, every.reuse, every.skip) == (
        ("join",), ("source", "left", "right"), ("side",)
    )
    # right may not be reused: it runs, and so does nothing else but the target.
    some = narrow(graph, ["join"], lambda node: node != "right")
    assert (some.run, some.reuse) == (("right", "join"), ("source", "left"))
    # source may not be reused: everything downstream of it that is needed runs too, without
    # asking whether it could be reused.
    asked: list[str] = []

    def usable(node: str) -> bool:
        asked.append(node)
        return node != "source"

    none = narrow(graph, ["join"], usable)
    assert none.run == ("source", "left", "right", "join") and none.reuse == ()
    assert asked == ["source"]


def test_rows_copy_the_reused_point_at_their_maker_and_skip_with_a_reason() -> None:
    graph = diamond.graph
    chosen = narrow(graph, ["join"], lambda node: node != "right")
    old = {
        "source": [TaskRunRecord("old", "source", "source", None, TaskState.SUCCEEDED,
                                 attempt=1, result_uri="/r/source", worker="w1",
                                 reused_from="older")],
        "left": [TaskRunRecord("old", "left", "left", None, TaskState.SUCCEEDED, attempt=2,
                               result_uri="/r/left")],
    }  # fmt: skip
    rows = {r.task_key: r for r in narrowed_rows(graph, chosen, old, "old", "new", "not needed")}
    assert list(rows) == ["source", "left", "right", "join", "side"]
    assert (rows["source"].run_id, rows["source"].reused_from, rows["source"].worker) == (
        "new", "older", None,
    )  # fmt: skip
    assert (rows["left"].reused_from, rows["left"].attempt, rows["left"].result_uri) == (
        "old", 2, "/r/left",
    )  # fmt: skip
    assert rows["right"].state == rows["join"].state == TaskState.PENDING
    assert (rows["side"].state, rows["side"].error) == (TaskState.SKIPPED, "not needed")
