"""Assets under ``/api/v1`` (``assets.read``): the catalog, one asset with its partitions and
history, its materializations page by page, and the lineage graph across pipelines."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field

from legato.api.http_errors import ERRORS
from legato.api.schemas import Record
from legato.services.door import Door

#: An asset's key in a path, as ``legato.definitions.assets`` allows it.
AssetKey = Annotated[str, Path(min_length=1, max_length=200, description='e.g. "shop.orders"')]
#: Ids of materializations are positive 64-bit integers.
_MAX_ID = 2**63 - 1


class MaterializationOut(Record):
    """One materialization: which run and task made the asset, for which partition, when,
    and the output's metadata (``rows``, ``columns``, ``bytes``, ``preview``, ``values``)."""

    id: int
    asset: str
    partition: str | None
    pipeline: str
    run_id: str
    task_key: str
    at: datetime
    metadata: dict[str, Any]


class AssetOut(Record):
    """An asset of the catalog, with its newest materialization (None: never made)."""

    key: str
    description: str | None
    owner: str | None
    tags: list[str]
    freshness_seconds: float | None = Field(description="the most it may lag, in seconds")
    partitions: dict[str, Any] | None = Field(description="those of its producing pipeline")
    producers: list[str] = Field(description="the tasks producing it, as pipeline.task")
    consumers: list[str] = Field(description="the tasks declaring they read it")
    latest: MaterializationOut | None


class CountsOut(Record):
    materializations: int
    partitions: int


class AssetDetailOut(Record):
    """One asset: its catalog entry, the assets it is made from and those made from it, the
    newest materialization per partition (greatest first) and the newest ones of all;
    ``triggers``: the pipelines a materialization of it starts (``on_asset``)."""

    entry: AssetOut
    upstream: list[str]
    downstream: list[str]
    partitions: list[MaterializationOut]
    history: list[MaterializationOut]
    counts: CountsOut
    triggers: list[str]


class EdgeOut(Record):
    upstream: str
    downstream: str


class LineageOut(Record):
    """The asset graph: every asset (a node) and each edge from an asset to one made from it."""

    nodes: list[AssetOut]
    edges: list[EdgeOut]


def router(ctx: Door) -> APIRouter:
    """The /assets and /lineage routes over ``ctx``."""
    r = APIRouter(responses=ERRORS, tags=["assets"])

    @r.get("/assets", response_model=list[AssetOut], summary="List assets")
    def list_assets(
        search: Annotated[str | None, Query(max_length=200, description="keys holding it")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> list[AssetOut]:
        """Every asset the project's pipelines produce or consume, by key, with its newest
        materialization."""
        found = ctx.assets.catalog(search=search, limit=limit, offset=offset)
        return [AssetOut.of(e) for e in found]

    @r.get("/assets/{key}", response_model=AssetDetailOut, summary="Get an asset")
    def get_asset(
        key: AssetKey,
        partitions: Annotated[int, Query(ge=1, le=1000)] = 100,
        history: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> AssetDetailOut:
        """The asset ``key``: producers, consumers, upstream and downstream assets, the
        newest materialization of up to ``partitions`` partitions and the ``history``
        newest materializations."""
        return AssetDetailOut.of(ctx.assets.asset(key, partitions=partitions, history=history))

    @r.get(
        "/assets/{key}/materializations", response_model=list[MaterializationOut],
        summary="List an asset's materializations",
    )
    def list_materializations(
        key: AssetKey,
        partition: Annotated[str | None, Query(max_length=200)] = None,
        before: Annotated[
            int | None, Query(ge=1, le=_MAX_ID, description="older than this id: the next page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[MaterializationOut]:
        """Materializations of ``key`` (of one ``partition`` if given), newest first; pass
        the last id of a page as ``before`` for the next."""
        found = ctx.assets.materializations(
            key, partition=partition, before_id=before, limit=limit
        )
        return [MaterializationOut.of(m) for m in found]

    @r.get("/lineage", response_model=LineageOut, summary="Get the lineage graph")
    def lineage() -> LineageOut:
        """The asset graph across pipelines, derived from what tasks produce and consume."""
        graph = ctx.assets.lineage()
        return LineageOut(
            nodes=[AssetOut.of(n) for n in graph.nodes],
            edges=[EdgeOut(upstream=u, downstream=d) for u, d in graph.edges],
        )

    return r
