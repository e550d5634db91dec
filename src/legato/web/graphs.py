"""The graphs the pages draw: a run's, each node in its state, and a pipeline's. Look-alike
nodes are drawn as one box each group (dag_groups.py) unless the page's ``expand`` query
names it; the page lists the expanded groups with a link that folds each back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from legato.domain.states import TaskState
from legato.web.dag_groups import NodeGroup, collapse, find_groups
from legato.web.dag_layout import DagNode, render_svg
from legato.web.views import q

if TYPE_CHECKING:
    from legato.domain.records import TaskRunRecord
    from legato.services.catalog import NodeView, RunDetail
    from legato.services.check_steps import CheckStep

#: The page's URL with this set of groups expanded.
ExpandUrl = Callable[[Collection[str]], str]


@dataclass(frozen=True)
class Folded:
    """An expanded group as the page lists it: its name, size and the link that folds it."""

    id: str
    task: str
    count: int
    url: str


@dataclass(frozen=True)
class Graph:
    """A graph as drawn (``svg``) and its groups that are expanded."""

    svg: str
    expanded: tuple[Folded, ...]
    groups: int  # how many groups the graph has, expanded or not


def node_states(
    nodes: tuple[NodeView, ...], tasks: tuple[TaskRunRecord, ...]
) -> dict[str, tuple[str | None, str]]:
    """Each node's state and a detail line (a mapped node's elements by state)."""
    own = {t.task_key: t for t in tasks if t.map_index is None}
    elements: dict[str, list[TaskRunRecord]] = {}
    for t in tasks:
        if t.map_index is not None:
            elements.setdefault(t.node, []).append(t)
    out: dict[str, tuple[str | None, str]] = {}
    for n in nodes:
        row = own.get(n.id)
        state = None if row is None else str(row.state)
        detail = ""
        kids = elements.get(n.id, [])
        if kids:
            ok = sum(1 for k in kids if k.state == TaskState.SUCCEEDED)
            detail = f"{ok}/{len(kids)} elements"
        elif row is not None and row.attempt > 1:
            detail = f"attempt {row.attempt}"
        elif row is not None and row.reused_from:
            detail = "reused"
        out[n.id] = (state, detail)
    return out


def groups_of(
    nodes: tuple[NodeView, ...], version: tuple[str, str] | None
) -> tuple[NodeGroup, ...]:
    """The groups of look-alike nodes of a graph; ``version`` (pipeline, code version) names
    a graph that never changes, whose groups are then found once."""
    if version is None:
        return find_groups(nodes)
    with _LOCK:
        found = _GROUPS.get(version)
    if found is None:
        found = find_groups(nodes)
        with _LOCK:
            _GROUPS[version] = found
            while len(_GROUPS) > 16:
                del _GROUPS[next(iter(_GROUPS))]  # the oldest
    return found


# A run's graph is its code version's snapshot, fixed once recorded: every view of a big run
# (and every live change) asks for the same groups.
_GROUPS: dict[tuple[str, str], tuple[NodeGroup, ...]] = {}
_LOCK = threading.Lock()  # the pages are served from a pool of threads


def run_dag(
    detail: RunDetail, expand: Collection[str] = (), url: ExpandUrl | None = None
) -> Graph:
    """The run's graph, each node coloured by its state and linked to its log, each group
    folded unless in ``expand`` and linked to ``url`` with it expanded."""
    states = node_states(detail.nodes, detail.tasks)
    dag = [
        DagNode(
            n.id,
            n.id,
            n.upstream,
            states.get(n.id, (None, ""))[0],
            n.mapped,
            states.get(n.id, (None, ""))[1],
        )
        for n in detail.nodes
    ]
    # Each check after its task: a step of its own, in the colour of its outcome.
    dag += [
        DagNode(c.id, c.name, (c.node,), c.state, detail=_counted(c), kind="check")
        for c in detail.checks
    ]
    task_of = {c.id: c.node for c in detail.checks}  # a check's step opens its task's log
    base = f"/runs/{detail.run.id}"
    link: Callable[[str], str] = lambda key: f"{base}?task={q(task_of.get(key, key))}#logs"  # noqa: E731
    version = (detail.run.pipeline, detail.run.code_version)
    shown = {k: s for k, (s, _) in states.items()}
    return _folded(dag, groups_of(detail.nodes, version), expand, url, link, shown)


def _counted(step: CheckStep) -> str:
    if step.failed_count is None:
        return step.message
    return f"{step.failed_count} of {step.total_count} rows failed"


def pipeline_dag(
    nodes: tuple[NodeView, ...], expand: Collection[str] = (), url: ExpandUrl | None = None
) -> Graph:
    """A pipeline's graph (no states), each task's checks as steps after it."""
    dag = [
        DagNode(n.id, n.id, n.upstream, None, n.mapped, f"pool {n.pool}" if n.pool else "")
        for n in nodes
    ]
    dag += [
        DagNode(f"{n.id}:{name}", name, (n.id,), None, detail=severity, kind="check")
        for n in nodes
        for name, severity in n.checks
    ]
    return _folded(dag, groups_of(nodes, None), expand, url, None, None)


def _folded(
    dag: list[DagNode],
    groups: tuple[NodeGroup, ...],
    expand: Collection[str],
    url: ExpandUrl | None,
    link: Callable[[str], str] | None,
    states: dict[str, str | None] | None,
) -> Graph:
    opened = [g.id for g in groups if g.id in expand]
    folded = {g.id for g in groups} - set(opened)

    def target(key: str) -> str | None:
        if key in folded:
            return None if url is None else url([*opened, key]) + "#graph"
        return link(key) if link is not None else None

    svg = render_svg(collapse(dag, groups, opened, states), link=target)
    shown = tuple(
        Folded(g.id, g.task, len(g.members),
               "" if url is None else url([o for o in opened if o != g.id]) + "#graph")
        for g in groups
        if g.id in expand
    )
    return Graph(svg, shown, len(groups))
