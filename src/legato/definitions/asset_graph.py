"""The asset graph across pipelines, derived from what tasks declare they produce and consume.

An asset's producers are the tasks that produce it, its consumers the tasks that consume it.
Its upstream assets are what its producing task reads: the assets that task consumes, and
those produced by the tasks upstream of it in its pipeline (the nearest ones on each path:
an asset made further up is upstream of those, not of this one). A task upstream that
produces nothing passes on what it consumes. Downstream is the same relation read the other
way. No edge is drawn by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from legato.definitions.assets import Asset
from legato.definitions.partitioning import PartitionSet
from legato.definitions.pipeline import Pipeline

__all__ = ["AssetGraph", "AssetNode", "TaskRef", "asset_graph", "producer_conflicts"]


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task of a pipeline, by its node id, and where its function is defined."""

    pipeline: str
    node: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.pipeline}.{self.node}"


@dataclass
class AssetNode:
    """One asset of the graph: its declaration (the producer's, else the fullest consumer's),
    the partitions it inherits from its producing pipeline, and who makes and reads it."""

    asset: Asset
    partitions: dict[str, Any] | None = None
    partition_set: PartitionSet | None = None  # what ``partitions`` describes
    producers: list[TaskRef] = field(default_factory=list)
    consumers: list[TaskRef] = field(default_factory=list)
    upstream: set[str] = field(default_factory=set)
    downstream: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.asset.key


@dataclass(frozen=True)
class AssetGraph:
    """Every asset the given pipelines declare, by key, and the edges between them."""

    nodes: dict[str, AssetNode]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs, sorted."""
        return sorted((up, n.key) for n in self.nodes.values() for up in n.upstream)


def _ref(pipe: Pipeline, node_id: str) -> TaskRef:
    task = pipe.graph.nodes[node_id].task
    return TaskRef(pipe.name, node_id, task.file, task.line)


def _fuller(a: Asset, b: Asset) -> Asset:
    """Of two declarations of one key, the one saying more (a bare key says nothing)."""
    def said(x: Asset) -> int:
        return sum(v is not None and v != () for v in (x.description, x.owner, x.tags,
                                                          x.freshness))  # fmt: skip

    return b if said(b) > said(a) else a


def _reads(pipe: Pipeline, node_id: str) -> set[str]:
    """The assets the task ``node_id`` reads: what it consumes, and what the nearest
    producing tasks upstream of it in ``pipe`` produce (through tasks producing nothing,
    which pass on what they consume)."""
    nodes = pipe.graph.nodes
    out = {a.key for a in nodes[node_id].task.consumes}
    seen: set[str] = set()
    todo = list(nodes[node_id].upstream)
    while todo:
        up = todo.pop()
        if up in seen:
            continue
        seen.add(up)
        task = nodes[up].task
        if task.produces:  # what it reads is upstream of its assets, not of ours
            out.update(a.key for a in task.produces)
        else:
            out.update(a.key for a in task.consumes)
            todo.extend(nodes[up].upstream)
    return out


def asset_graph(pipelines: Iterable[Pipeline]) -> AssetGraph:
    """The asset graph of ``pipelines`` (taken in name order, so the result is stable)."""
    nodes: dict[str, AssetNode] = {}
    declared_by_producer: set[str] = set()

    def node_of(asset: Asset, producer: bool) -> AssetNode:
        found = nodes.get(asset.key)
        if found is None:
            found = nodes[asset.key] = AssetNode(asset)
        elif producer and asset != Asset(asset.key) and asset.key not in declared_by_producer:
            found.asset = asset  # what the producer says of its asset comes first
        elif asset.key not in declared_by_producer:
            found.asset = _fuller(found.asset, asset)
        if producer and asset != Asset(asset.key):
            declared_by_producer.add(asset.key)
        return found

    for pipe in sorted(pipelines, key=lambda p: p.name):
        parts = pipe.automation.partitions
        for node_id in pipe.graph.nodes:
            task = pipe.graph.nodes[node_id].task
            if not (task.produces or task.consumes):
                continue
            ref = _ref(pipe, node_id)
            for a in task.consumes:
                node_of(a, False).consumers.append(ref)
            if task.produces:
                reads = _reads(pipe, node_id)
                for a in task.produces:
                    made = node_of(a, True)
                    made.producers.append(ref)
                    if made.partitions is None and parts is not None:
                        made.partitions = parts.describe()
                        made.partition_set = parts
                    made.upstream.update(reads - {a.key})
    for made in list(nodes.values()):
        for up in made.upstream:
            nodes[up].downstream.add(made.key)
    return AssetGraph(dict(sorted(nodes.items())))


def producer_conflicts(pipelines: Iterable[Pipeline]) -> list[tuple[str, TaskRef, TaskRef]]:
    """Assets produced by two different tasks: ``(key, first, second)`` for each task after
    the first. One task (one function) producing it in several places is no conflict: a
    pipeline reusing the task of another makes the same asset the same way."""
    first: dict[str, tuple[Any, TaskRef]] = {}
    out: list[tuple[str, TaskRef, TaskRef]] = []
    for pipe in sorted(pipelines, key=lambda p: p.name):
        for node_id in sorted(pipe.graph.nodes):
            task = pipe.graph.nodes[node_id].task
            for a in task.produces:
                ref = _ref(pipe, node_id)
                seen = first.setdefault(a.key, (task.fn, ref))
                if seen[0] is not task.fn:
                    out.append((a.key, seen[1], ref))
    return out
