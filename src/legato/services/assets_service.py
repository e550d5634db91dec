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
from typing import TYPE_CHECKING, Any

from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.asset_graph import AssetGraph, AssetNode
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

    @staticmethod
    def _entry(node: AssetNode, latest: Materialization | None) -> AssetEntry:
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
        )

    @action("assets.read")
    def catalog(
        self, *, search: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[AssetEntry]:
        """Every asset the pipelines declare, by key, with its newest materialization;
        ``search``: only keys containing it; ``limit`` and ``offset`` page through them."""
        if offset < 0:
            raise ServiceError("offset must not be negative", "offset")
        nodes = list(self._graph().nodes.values())
        if search:
            needle = search.lower()
            nodes = [n for n in nodes if needle in n.key.lower()]
        nodes = nodes[offset : None if limit is None else offset + _page(limit)]
        latest = self._latest([n.key for n in nodes])
        return [self._entry(n, latest.get(n.key)) for n in nodes]

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
        return AssetView(
            entry=self._entry(node, latest),
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
    def lineage(self) -> Lineage:
        """The asset graph of every pipeline seen: nodes with their newest materialization
        (of its metadata, ``rows`` alone), and edges from each asset to those made from it."""
        graph = self._graph()
        latest = self._latest(list(graph.nodes), brief=True)
        return Lineage(
            nodes=tuple(self._entry(n, latest.get(k)) for k, n in graph.nodes.items()),
            edges=tuple(graph.edges),
        )

    def _seen(self, found: list[Materialization]) -> list[Materialization]:
        sight = self._sight()
        return found if sight.whole else [m for m in found if sight.covers(m.pipeline)]
