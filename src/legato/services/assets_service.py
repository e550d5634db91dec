"""Assets as people see them: the catalog of every asset the project's pipelines declare, with
its latest materialization; one asset with its partitions, history, producers, consumers,
upstream and downstream; and the lineage graph across pipelines (``assets.read``).

The graph comes from the loaded definitions (``legato.definitions.asset_graph``), worked out
once per load of the code and per sight; materializations come from the store, by index.
An actor whose grant is scoped sees the assets of the pipelines it sees, and their
materializations by those pipelines.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from legato.services.actor import Actor
from legato.services.asset_freshness import NO_POLICY, Freshness, due_partitions, judge
from legato.services.gate import Service, action
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.asset_graph import AssetGraph, AssetNode
    from legato.definitions.partitioning import Partition
    from legato.domain.materializations import AssetCounts, Materialization
    from legato.loader import Project
    from legato.services.workspace import Workspace

#: Most rows one page of the catalog, of partitions or of history may hold.
MAX_PAGE = 1000


@dataclass(frozen=True)
class AssetEntry:
    """An asset of the catalog: its declaration, partitions (those of its producing
    pipeline), producing and consuming tasks (``pipeline.task``), and newest materialization."""

    key: str
    description: str | None
    owner: str | None
    tags: tuple[str, ...]
    freshness_seconds: float | None
    partitions: dict[str, Any] | None
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    latest: Materialization | None
    freshness: Freshness = NO_POLICY


@dataclass(frozen=True)
class AssetView:
    """One asset: its catalog entry, the assets it is made from and those made from it, the
    newest materialization of each partition (greatest first) and the newest
    materializations of all (``history``), with how many there are; ``triggers``: the
    pipelines each of its materializations starts (their ``on_asset`` triggers name it)."""

    entry: AssetEntry
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    partitions: tuple[Materialization, ...]
    history: tuple[Materialization, ...]
    counts: AssetCounts
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lineage:
    """The asset graph: every asset, and each (upstream, downstream) edge."""

    nodes: tuple[AssetEntry, ...]
    edges: tuple[tuple[str, str], ...]
    #: How many assets the whole graph holds (more than ``nodes`` when a part was asked for).
    total: int = 0
    #: Whether ``limit`` left out assets the part asked for would have held.
    cut: bool = False


def _page(limit: int, field: str = "limit") -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ServiceError(f"{field} must be between 1 and {MAX_PAGE}", field)
    return limit


class Assets(Service):
    """The asset catalog, one asset, and lineage, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws
        self._lock = threading.Lock()
        # Per sight (the pipelines seen; None: all), the graph of the load it was made from.
        self._graphs: dict[frozenset[str] | None, tuple[Project, AssetGraph]] = {}

    def _graph(self) -> AssetGraph:
        from legato.definitions.asset_graph import asset_graph

        sight = self._sight()
        seen = sight.pipelines()
        project = self.ws.project
        with self._lock:
            cached = self._graphs.get(seen)
            if cached is not None and cached[0] is project:
                return cached[1]
        graph = asset_graph(sight.visible())
        with self._lock:
            if len(self._graphs) > 64:  # many scoped actors: start again rather than grow
                self._graphs.clear()
            self._graphs[seen] = (project, graph)
        return graph

    def _latest(self, keys: list[str], brief: bool = False) -> dict[str, Materialization]:
        found = self.ws.store.assets.latest(keys, brief=brief)
        sight = self._sight()
        if sight.whole:
            return found
        return {k: m for k, m in found.items() if sight.covers(m.pipeline)}

    def _freshness(
        self, nodes: list[AssetNode], latest: dict[str, Materialization]
    ) -> dict[str, Freshness]:
        """The freshness of ``nodes`` at the workspace's clock: one statement for the due
        partitions of all of them, on top of their newest materializations (``latest``)."""
        now = self.ws.clock()
        due: dict[tuple[int, timedelta], list[Partition]] = {}  # per partition set and lag
        due_of: dict[str, list[Partition]] = {}
        for n in nodes:
            lag = n.asset.freshness
            if lag is None or n.partition_set is None:
                continue
            ident = (id(n.partition_set), lag)
            if ident not in due:
                due[ident] = due_partitions(n.partition_set, lag, now)
            due_of[n.key] = due[ident]
        present: dict[str, set[str]] = {}
        wanted = {k: [p.key for p in parts] for k, parts in due_of.items() if parts}
        if wanted:
            sight = self._sight()
            for asset, partition, pipeline in self.ws.store.assets.present(wanted):
                if sight.whole or sight.covers(pipeline):
                    present.setdefault(asset, set()).add(partition)
        out: dict[str, Freshness] = {}
        for n in nodes:
            last = latest.get(n.key)
            out[n.key] = judge(
                lag=n.asset.freshness,
                partitions=n.partition_set,
                now=now,
                newest_at=None if last is None else last.at,
                present=present.get(n.key, ()),
                due=due_of.get(n.key),
            )
        return out

    def _entries(self, nodes: list[AssetNode], *, brief: bool = False) -> list[AssetEntry]:
        latest = self._latest([n.key for n in nodes], brief=brief)
        fresh = self._freshness(nodes, latest)
        return [self._entry(n, latest.get(n.key), fresh[n.key]) for n in nodes]

    @staticmethod
    def _entry(
        node: AssetNode, latest: Materialization | None, freshness: Freshness = NO_POLICY
    ) -> AssetEntry:
        a = node.asset
        return AssetEntry(
            key=a.key,
            description=a.description,
            owner=a.owner,
            tags=a.tags,
            freshness_seconds=None if a.freshness is None else a.freshness.total_seconds(),
            partitions=node.partitions,
            producers=tuple(str(p) for p in node.producers),
            consumers=tuple(str(c) for c in node.consumers),
            latest=latest,
            freshness=freshness,
        )

    @action("assets.read")
    def catalog(
        self,
        *,
        search: str | None = None,
        stale: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[AssetEntry]:
        """Every asset the pipelines declare, by key, with its newest materialization and
        its freshness; ``search``: only keys containing it; ``stale``: only the stale ones
        (judged before paging, over the assets that have a policy alone); ``limit`` and
        ``offset`` page through them."""
        if offset < 0:
            raise ServiceError("offset must not be negative", "offset")
        nodes = list(self._graph().nodes.values())
        if search:
            needle = search.lower()
            nodes = [n for n in nodes if needle in n.key.lower()]
        end = None if limit is None else offset + _page(limit)
        if not stale:
            return self._entries(nodes[offset:end])
        # Judged on each newest materialization's time alone; the page then read in full.
        policed = [n for n in nodes if n.asset.freshness is not None]
        fresh = self._freshness(policed, self._latest([n.key for n in policed], brief=True))
        return self._entries([n for n in policed if fresh[n.key].stale][offset:end])

    @action("assets.read")
    def asset(self, key: str, *, partitions: int = 100, history: int = 20) -> AssetView:
        """The asset ``key``: its entry, upstream and downstream assets, the newest
        materialization of up to ``partitions`` partitions and the ``history`` newest
        materializations. NotFoundError for a key no pipeline declares."""
        node = self._graph().nodes.get(key)
        if node is None:
            raise NotFoundError(f"no asset {key!r}: no task produces or consumes it")
        store = self.ws.store.assets
        per_partition = self._seen(store.partitions(key, limit=_page(partitions, "partitions")))
        recent = self._seen(store.history(key, limit=_page(history, "history")))
        latest = recent[0] if recent else None
        fresh = self._freshness([node], {key: latest} if latest is not None else {})
        return AssetView(
            entry=self._entry(node, latest, fresh[key]),
            upstream=tuple(sorted(node.upstream)),
            downstream=tuple(sorted(node.downstream)),
            partitions=tuple(per_partition),
            history=tuple(recent),
            counts=store.counts(key),
            triggers=tuple(
                p.name
                for p in sorted(self._sight().visible(), key=lambda p: p.name)
                if any(key in getattr(t, "assets", ()) for t in p.automation.triggers)
            ),
        )

    @action("assets.read")
    def materializations(
        self,
        key: str,
        *,
        partition: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Materialization]:
        """Materializations of ``key`` (of one ``partition`` if given), newest first;
        ``before_id`` pages on to those older than that id."""
        if key not in self._graph().nodes:
            raise NotFoundError(f"no asset {key!r}: no task produces or consumes it")
        found = self.ws.store.assets.history(
            key, partition=partition, before_id=before_id, limit=_page(limit)
        )
        return self._seen(found)

    @action("assets.read")
    def lineage(
        self, *, focus: str | None = None, depth: int = 2, limit: int | None = None
    ) -> Lineage:
        """The asset graph of every pipeline seen: nodes with their newest materialization
        (of its metadata, ``rows`` alone) and freshness, and edges from each asset to those
        made from it. ``focus``: only the assets within ``depth`` edges of that one (either
        way); ``limit``: at most that many nodes (those nearest the focus, else the first
        by key), and the edges between them. ``total`` says how many the whole graph has."""
        graph = self._graph()
        if focus is not None and focus not in graph.nodes:
            raise NotFoundError(f"no asset {focus!r}: no task produces or consumes it")
        if not 0 <= depth <= 50:
            raise ServiceError("depth must be between 0 and 50", "depth")
        keys = list(graph.nodes) if focus is None else _around(graph, focus, depth)
        cut = limit is not None and len(keys) > _page(limit)
        if limit is not None:
            keys = keys[:limit]
        chosen = set(keys)
        nodes = [graph.nodes[k] for k in sorted(chosen)]
        edges = graph.edges
        if len(chosen) < len(graph.nodes):
            edges = [(u, d) for u, d in edges if u in chosen and d in chosen]
        return Lineage(
            nodes=tuple(self._entries(nodes, brief=True)),
            edges=tuple(edges),
            total=len(graph.nodes),
            cut=cut,
        )

    def _seen(self, found: list[Materialization]) -> list[Materialization]:
        sight = self._sight()
        return found if sight.whole else [m for m in found if sight.covers(m.pipeline)]


def _around(graph: AssetGraph, focus: str, depth: int) -> list[str]:
    """``focus`` and the assets within ``depth`` edges of it, up or down, nearest first."""
    order, seen, ring = [focus], {focus}, [focus]
    for _ in range(depth):
        nxt = []
        for key in ring:
            node = graph.nodes[key]
            for other in sorted(node.upstream | node.downstream):
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        order.extend(nxt)
        ring = nxt
    return order
