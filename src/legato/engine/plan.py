"""From a pipeline's static graph to task runs: initial rows, inputs, mapped expansion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from legato.definitions.graph import Each, FromNode, FromParam, Literal, Node
from legato.definitions.pipeline import Pipeline
from legato.domain.ids import run_folder
from legato.domain.records import NewEvent, TaskRunRecord
from legato.domain.refs import ResultRef
from legato.domain.states import TaskState
from legato.executors.interface import Input, Stored, StoredItem, StoredList, Value


def log_path(logs_dir: Path | str, run_id: str, task_key: str, attempt: int) -> str:
    """Where an attempt's output goes: one folder per run (under its day: ``run_folder``),
    one file per attempt.

    Raises ValueError for a run id or task key that would put the file anywhere else: task
    names are checked when they are defined, and this keeps a name that slipped past from
    writing outside the logs folder.
    """
    for part in (run_id, task_key):
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise ValueError(f"{part!r} cannot name a log file or folder")
    # Neither part can hold a separator or be "." or "..": the file is in the run's folder.
    return f"{logs_dir}/{run_folder(run_id)}/{task_key}.{attempt}.log"


def element_key(node: str, index: int) -> str:
    """The task key of element ``index`` of a mapped node."""
    return f"{node}[{index}]"


def initial_task_runs(pipeline: Pipeline, run_id: str) -> list[TaskRunRecord]:
    """One pending row per node; a mapped node's row stands for all its future elements."""
    return [
        TaskRunRecord(
            run_id=run_id, task_key=n.id, node=n.id, map_index=None, state=TaskState.PENDING
        )
        for n in pipeline.graph.nodes.values()
    ]


def creation_events(rows: Sequence[TaskRunRecord], at: datetime) -> list[NewEvent]:
    """The log entries that record how each new task run starts (and why: reused from an
    older run, or skipped for a reason)."""
    return [
        NewEvent(
            r.run_id,
            r.task_key,
            "task_state",
            None,
            str(r.state),
            at,
            f"reused from run {r.reused_from}" if r.reused_from else r.error,
        )
        for r in rows
    ]


def items_needed(pipeline: Pipeline) -> set[str]:
    """Static nodes whose list results a mapped node iterates over (stored item by item)."""
    out: set[str] = set()
    for node in pipeline.graph.nodes.values():
        for arg in node.all_args():
            if isinstance(arg, Each) and isinstance(arg.source, FromNode):
                src = pipeline.graph.nodes[arg.source.node]
                if not src.mapped:
                    out.add(src.id)
    return out


def ref_of(row: TaskRunRecord) -> ResultRef:
    """The stored result of a finished task run."""
    return ResultRef(row.result_uri, row.result_format or "none", row.result_note)


class MapError(Exception):
    """A mapped node cannot expand (its iterables disagree or are not lists)."""


def map_count(
    node: Node,
    params: Mapping[str, Any],
    rows: Mapping[str, TaskRunRecord],
    children: Mapping[str, list[str]],
) -> int:
    """How many elements a mapped node has, from its iterable arguments."""
    counts: list[tuple[str, int]] = []
    for arg in node.all_args():
        if not isinstance(arg, Each):
            continue
        src = arg.source
        if isinstance(src, Literal):
            counts.append(("a literal", len(list(src.value))))
        elif isinstance(src, FromParam):
            value = params.get(src.name)
            try:
                counts.append((f"param {src.name!r}", len(value)))  # type: ignore[arg-type]
            except TypeError:
                raise MapError(f"param {src.name!r} is not a list, cannot map over it") from None
        else:
            up = rows[src.node]
            if src.node in children:
                counts.append((f"task {src.node!r}", len(children[src.node])))
            elif up.item_count is None:
                raise MapError(f"task {src.node!r} did not return a list to map over")
            else:
                counts.append((f"task {src.node!r}", up.item_count))
    sizes = {c for _, c in counts}
    if len(sizes) > 1:
        detail = ", ".join(f"{what} has {n}" for what, n in counts)
        raise MapError(f"mapped arguments differ in length: {detail}")
    return counts[0][1] if counts else 0


def resolve_inputs(
    node: Node,
    map_index: int | None,
    params: Mapping[str, Any],
    rows: Mapping[str, TaskRunRecord],
    children: Mapping[str, list[str]],
    item_refs: Mapping[str, tuple[ResultRef, ...]],
    cache: dict[str, tuple[TaskRunRecord, ResultRef]] | None = None,
) -> tuple[tuple[Input, ...], tuple[tuple[str, Input], ...]]:
    """The inputs of one task run, as references for the worker to load.

    ``cache`` keeps the ref of each upstream row as last made: the elements of a map share
    one ref object (a batch of them pickles it once).
    """

    def ref(key: str) -> ResultRef:
        row = rows[key]
        if cache is None:
            return ref_of(row)
        hit = cache.get(key)
        if hit is not None and hit[0] is row:
            return hit[1]
        made = ref_of(row)
        cache[key] = (row, made)
        return made

    def one(arg: Any) -> Input:
        if isinstance(arg, Literal):
            return Value(arg.value)
        if isinstance(arg, FromParam):
            return Value(params.get(arg.name))
        if isinstance(arg, FromNode):
            if arg.node in children:
                return StoredList(tuple(ref_of(rows[k]) for k in children[arg.node]))
            return Stored(ref(arg.node))
        assert isinstance(arg, Each) and map_index is not None
        src = arg.source
        if isinstance(src, Literal):
            return Value(list(src.value)[map_index])
        if isinstance(src, FromParam):
            return Value(list(params[src.name])[map_index])
        if src.node in children:
            return Stored(ref_of(rows[children[src.node][map_index]]))
        items = item_refs.get(src.node)
        return StoredItem(ref(src.node), map_index, items[map_index] if items else None)

    return (
        tuple(one(a) for a in node.args),
        tuple((k, one(a)) for k, a in node.kwargs),
    )
