"""The other side of a task's relationship checks: where each asset they compare with is
stored, resolved by the driver when it starts the attempt (the worker only reads it).

``checks.relationship("customer_id", "shop.customers", "id")`` reads ``shop.customers`` as
this run produced it when a task of the run has (an upstream task: its value from this run),
else its newest materialization: of the run's partition when that asset is partitioned the
same way, else its newest whatever the partition. A materialization names the run and task
that produced it; that task run's stored result is the data.
"""

from __future__ import annotations

from collections.abc import Mapping

from legato.definitions.partitioning import PartitionSet
from legato.definitions.pipeline import Pipeline
from legato.definitions.task import Task
from legato.domain.materializations import Materialization
from legato.domain.records import NotFound, TaskRunRecord
from legato.domain.refs import ResultRef
from legato.domain.states import TaskState
from legato.executors.interface import Related
from legato.store.faces import DriverStore

__all__ = ["related_assets", "resolve_related"]


def related_assets(task: Task) -> list[str]:
    """The asset keys ``task``'s relationship checks read (not those given their keys as
    values, nor those checking SQL tables, which query the other table themselves)."""
    keys: list[str] = []
    for check in task.checks:
        args = check.args
        if check.kind == "relationship" and args.get("to") and not args.get("table"):
            keys.append(str(args["to"]))
    return list(dict.fromkeys(keys))


def resolve_related(
    task: Task,
    pipeline: Pipeline,
    rows: Mapping[str, TaskRunRecord],
    partition: str | None,
    store: DriverStore,
) -> tuple[Related, ...]:
    """Where each asset ``task``'s relationship checks read is stored, for a run of
    ``pipeline`` (its task runs ``rows``) on ``partition``."""
    found = []
    for key in related_assets(task):
        try:
            found.append(_in_run(key, pipeline, rows) or _stored(key, partition, pipeline, store))
        except Exception as exc:  # the store away: the check says so, as an error
            found.append(Related(key, problem=f"cannot look up asset {key!r}: {exc}"))
    return tuple(found)


def _in_run(key: str, pipeline: Pipeline, rows: Mapping[str, TaskRunRecord]) -> Related | None:
    """The asset as a task of this run produced it, once that task has succeeded."""
    for node in pipeline.graph.nodes.values():
        if any(a.key == key for a in node.task.produces):
            row = rows.get(node.id)
            if row is not None and row.state == TaskState.SUCCEEDED:
                return _of(key, row, f"task {node.id!r} of this run")
    return None


def _stored(
    key: str, partition: str | None, pipeline: Pipeline, store: DriverStore
) -> Related:
    chosen = _materialization(key, partition, pipeline.automation.partitions, store)
    if isinstance(chosen, str):
        return Related(key, problem=chosen)
    try:
        row = store.runs.get_task_run(chosen.run_id, chosen.task_key)
    except NotFound:
        return Related(key, problem=(
            f"asset {key!r} was materialized by run {chosen.run_id}, which is deleted"
        ))
    return _of(key, row, f"task {chosen.task_key!r} of run {chosen.run_id}")


def _materialization(
    key: str, partition: str | None, parts: PartitionSet | None, store: DriverStore
) -> Materialization | str:
    """The materialization to read, or why there is none."""
    newest = store.assets.latest([key]).get(key)
    if newest is None:
        return f"asset {key!r} has never been materialized"
    if partition is None or newest.partition in (None, partition):
        return newest
    same = store.assets.history(key, partition=partition, limit=1)
    if same:
        return same[0]
    if parts is not None and _is_key(parts, newest.partition):
        return (
            f"asset {key!r} has no materialization of partition {partition!r} "
            f"(its newest is of {newest.partition!r})"
        )
    return newest  # partitioned otherwise: its newest is what there is


def _is_key(parts: PartitionSet, key: str | None) -> bool:
    """Whether ``key`` names a partition of ``parts`` (the other asset is partitioned the
    same way as this run)."""
    if key is None:
        return False
    try:
        parts.get(key)
    except ValueError:
        return False
    return True


def _of(key: str, row: TaskRunRecord, what: str) -> Related:
    if row.result_uri is None or row.result_format is None:
        return Related(key, problem=f"asset {key!r} as {what} produced it holds no data")
    return Related(key, ResultRef(row.result_uri, row.result_format, row.result_note))
