"""The static graph of a pipeline: nodes, how their arguments are wired, and their order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from legato.definitions.errors import DefinitionError
from legato.definitions.task import Task


@dataclass(frozen=True)
class Literal:
    """A constant written in the pipeline body."""

    value: Any


@dataclass(frozen=True)
class FromNode:
    """The result of an upstream node (the list of element results if it is mapped)."""

    node: str


@dataclass(frozen=True)
class FromParam:
    """A pipeline param, bound when the run starts."""

    name: str


@dataclass(frozen=True)
class Each:
    """An argument a mapped node iterates over: one element per task run."""

    source: Literal | FromNode | FromParam


Arg = Literal | FromNode | FromParam | Each


@dataclass(frozen=True)
class Node:
    """One task call in the pipeline body."""

    id: str
    task: Task
    args: tuple[Arg, ...]
    kwargs: tuple[tuple[str, Arg], ...]
    mapped: bool
    upstream: tuple[str, ...]  # data and order dependencies, without repeats
    file: str
    line: int
    #: (parameter, resource name) for each parameter filled with a resource when the task
    #: runs: annotated with ``legato.resource(...)``, or required and left unset by the call
    #: (then the parameter's name is the resource's; the loader checks it is declared).
    resources: tuple[tuple[str, str], ...] = ()

    def all_args(self) -> Iterator[Arg]:
        yield from self.args
        for _, a in self.kwargs:
            yield a


@dataclass
class Graph:
    """Nodes in a topological order, with each node's downstream."""

    nodes: dict[str, Node] = field(default_factory=dict)
    downstream: dict[str, list[str]] = field(default_factory=dict)

    def descendants(self, roots: set[str]) -> set[str]:
        """The nodes in ``roots`` and every node downstream of them."""
        seen = set(roots)
        stack = list(roots)
        while stack:
            for child in self.downstream.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def ancestors(self, node: str) -> set[str]:
        """Every node upstream of ``node`` (not itself)."""
        seen: set[str] = set()
        stack = list(self.nodes[node].upstream)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.nodes[n].upstream)
        return seen


def topological(
    nodes: dict[str, Node], edge_lines: dict[tuple[str, str], tuple[str, int]]
) -> Graph:
    """Order nodes so that every upstream comes first; a cycle is a DefinitionError."""
    indegree = {n: 0 for n in nodes}
    downstream: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes.values():
        for up in node.upstream:
            downstream[up].append(node.id)
            indegree[node.id] += 1
    # Among ready nodes the one declared first goes first: the order reads like the code.
    position = {n: i for i, n in enumerate(nodes)}
    ready = [(position[n], n) for n in nodes if indegree[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for child in downstream[n]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) != len(nodes):
        stuck = [n for n in nodes if indegree[n] > 0]
        cycle = _find_cycle(nodes, set(stuck))
        # Blame the edge declared last: it is the one that closed the cycle.
        made = {edge: i for i, edge in enumerate(edge_lines)}
        closing = max(
            (e for e in itertools.pairwise(cycle) if e in made),
            key=lambda e: made[e],
            default=None,
        )
        file, line = edge_lines[closing] if closing else ("<unknown>", 0)
        raise DefinitionError("dependency cycle: " + " -> ".join(cycle), file, line)
    return Graph(nodes={n: nodes[n] for n in order}, downstream=downstream)


def _find_cycle(nodes: dict[str, Node], candidates: set[str]) -> list[str]:
    # Walk upstream edges inside the stuck set until a node repeats.
    start = sorted(candidates)[0]
    path = [start]
    seen = {start: 0}
    current = start
    while True:
        nxt = next(u for u in nodes[current].upstream if u in candidates)
        if nxt in seen:
            cyc = [*path[seen[nxt] :], nxt]
            return list(reversed(cyc))
        seen[nxt] = len(path)
        path.append(nxt)
        current = nxt
