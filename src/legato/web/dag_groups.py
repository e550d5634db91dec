"""Big graphs at a glance: the nodes made by one task function at one place in the graph are
drawn as one box, with their count and how many are in each state.

"One place" means the same upstream groups and the same downstream groups: a fan of 10,000
leaves between a root and a join is one group, and so are the ``a`` and the ``b`` steps of
10,000 ``b(a(i))`` chains (two groups, one edge between them). The groups are the coarsest
such split of the nodes by task function (partition refinement, as for bisimulation), so
they do not depend on the order the nodes come in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from legato.web.dag_layout import DagNode

#: Fewer look-alike nodes than this are drawn one by one: grouping them hides more than it saves.
GROUP_MIN = 5
#: Refinement rounds before giving up on splitting further; what is left unsplit and has an
#: edge inside (a long chain of one function) is drawn node by node rather than as a loop.
MAX_ROUNDS = 64
#: Which state colours a group's box: the first of these any member is in.
_COLOUR_ORDER = (
    "failed", "upstream_failed", "running", "up_for_retry", "queued", "pending", "canceled",
    "skipped", "succeeded",
)


@dataclass(frozen=True)
class NodeGroup:
    """Nodes drawn as one box: ``id`` is its first member's, ``task`` the function's name."""

    id: str
    task: str
    members: tuple[str, ...]


class GraphNode(Protocol):
    """What grouping needs of a node: its id, its task function, its upstream ids, and
    whether it is mapped (a mapped node is a stack of its own already: never grouped)."""

    @property
    def id(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def upstream(self) -> tuple[str, ...]: ...
    @property
    def mapped(self) -> bool: ...


def find_groups(nodes: Sequence[GraphNode], least: int = GROUP_MIN) -> tuple[NodeGroup, ...]:
    """The groups of at least ``least`` nodes, in the order of their first members."""
    index = {n.id: i for i, n in enumerate(nodes)}
    ups = [[index[u] for u in n.upstream if u in index] for n in nodes]
    downs: list[list[int]] = [[] for _ in nodes]
    for v, us in enumerate(ups):
        for u in us:
            downs[u].append(v)
    label = _numbered([(n.task, n.id if n.mapped else "") for n in nodes])
    for _ in range(MAX_ROUNDS):
        signature = [
            (label[v], frozenset(label[u] for u in ups[v]), frozenset(label[w] for w in downs[v]))
            for v in range(len(nodes))
        ]
        fresh = _numbered(signature)
        if len(set(fresh)) == len(set(label)):
            break
        label = fresh
    members: dict[int, list[int]] = {}
    for v, g in enumerate(label):
        members.setdefault(g, []).append(v)
    out = []
    for group in members.values():
        inside = set(group)
        if len(group) < least or any(u in inside for v in group for u in ups[v]):
            continue
        out.append(NodeGroup(nodes[group[0]].id, nodes[group[0]].task,
                             tuple(nodes[v].id for v in group)))
    return tuple(sorted(out, key=lambda g: index[g.id]))


def _numbered(keys: Sequence[object]) -> list[int]:
    seen: dict[object, int] = {}
    return [seen.setdefault(k, len(seen)) for k in keys]


def collapse(
    dag: Sequence[DagNode],
    groups: Iterable[NodeGroup],
    expanded: Collection[str] = (),
    states: dict[str, str | None] | None = None,
) -> list[DagNode]:
    """``dag`` with each group not in ``expanded`` drawn as one box (``kind="group"``, id the
    group's), edges to its members redirected to it. Steps hanging off a member (its checks)
    are left out with it. ``states`` gives each member's state, counted in the box's text."""
    into: dict[str, NodeGroup] = {}
    for g in groups:
        if g.id not in expanded:
            into.update((m, g) for m in g.members)
    if not into:
        return list(dag)
    out: list[DagNode] = []
    drawn: set[str] = set()
    by_id = {n.id: n for n in reversed(dag)}  # the first of duplicate ids, as the layout does
    for node in dag:
        group = into.get(node.id)
        if group is None:
            if node.kind == "check" and any(u in into for u in node.upstream):
                continue
            ups = tuple(dict.fromkeys(into[u].id if u in into else u for u in node.upstream))
            out.append(replace(node, upstream=ups))
        elif group.id not in drawn:
            drawn.add(group.id)
            out.append(_group_node(group, by_id[group.id], into, states))
    return out


def _group_node(
    group: NodeGroup,
    first: DagNode,
    into: dict[str, NodeGroup],
    states: dict[str, str | None] | None,
) -> DagNode:
    ups = tuple(dict.fromkeys(into[u].id if u in into else u for u in first.upstream))
    counts = count_states(states.get(m) for m in group.members) if states is not None else {}
    state = next((s for s in _COLOUR_ORDER if counts.get(s)), None) if counts else None
    return DagNode(
        group.id,
        f"{group.task} \u00d7{len(group.members):,}",
        ups,
        state,
        detail=counts_text(counts) if counts else f"{len(group.members):,} tasks",
        kind="group",
        count=len(group.members),
        counts=tuple(counts.items()),
    )


def count_states(states: Iterable[str | None]) -> dict[str, int]:
    """How many are in each state (``None``: "pending", not yet recorded), the states that
    want attention first."""
    out: dict[str, int] = {}
    for s in states:
        key = s or "pending"
        out[key] = out.get(key, 0) + 1
    rank = {s: i for i, s in enumerate(_COLOUR_ORDER)}
    return dict(sorted(out.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def counts_text(counts: dict[str, int]) -> str:
    """``9,999 succeeded · 1 failed``: the counts by state in a line."""
    return " · ".join(f"{n:,} {s}" for s, n in counts.items())
