"""The web UI's asset pages: the catalog, a page at a time and searchable by key, and one
asset with its producers, consumers, neighbours, partitions, materializations (paged, newest
first), latest metadata and a chart of its row counts; all read through ``door.assets``. An
operator materializes the asset from its page (the form posts to the API's materialize)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from legato.domain.materializations import Materialization
from legato.domain.records import CheckResultRecord
from legato.services.assets_service import AssetView
from legato.services.door import Door
from legato.services.service_errors import ServiceError
from legato.web.asset_chart import render_rows
from legato.web.lineage_page import draw

#: Assets on one page of the catalog: 10,000 of them are never drawn at once.
CATALOG_PAGE = 100
#: Materializations on one page of an asset's history.
HISTORY_PAGE = 50
#: Materializations the row-count chart draws.
CHART_POINTS = 60
#: Check results read for the page: the newest of each check among them, and a history.
CHECK_RESULTS = 200
CHECK_HISTORY = 20
#: Most assets the neighbourhood graph on an asset's page draws.
NEIGHBOURS = 40

Page = Callable[..., HTMLResponse]
Failure = Callable[[Request, Exception], HTMLResponse]


def preview_columns(preview: list[dict[str, Any]]) -> list[str]:
    """The preview's column names in first-seen order (rows may differ in their keys)."""
    seen: dict[str, None] = {}
    for row in preview:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _listed(value: Any) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _latest_metadata(latest: Materialization | None) -> dict[str, Any]:
    # Metadata is whatever a task's output gave: show what has the expected shape.
    meta = latest.metadata if latest is not None else {}
    preview = _listed(meta.get("preview"))
    values = meta.get("values")
    return {
        "columns": _listed(meta.get("columns")),
        "preview": preview,
        "preview_columns": preview_columns(preview),
        "values": values if isinstance(values, dict) else {},
        "bytes": meta.get("bytes"),
    }


def _newest_per_check(results: list[CheckResultRecord]) -> list[CheckResultRecord]:
    # ``results`` come newest first: the first of each name is its latest outcome.
    seen: dict[str, CheckResultRecord] = {}
    for rec in results:
        seen.setdefault(rec.result.check_name, rec)
    return sorted(seen.values(), key=lambda r: r.result.check_name)


def _materialize_form(request: Request, view: AssetView) -> dict[str, Any] | None:
    """What the asset page's Materialize form offers (the partitions made so far to pick
    from, the producing pipelines when several), or None for someone who may not launch
    runs or an asset no task here produces."""
    actor = getattr(request.state, "actor", None)
    producers = view.entry.producers
    if actor is None or not actor.may("runs.create") or not producers:
        return None
    return {
        "partitions": [m.partition for m in view.partitions if m.partition is not None],
        "pipelines": sorted({p.split(".", 1)[0] for p in producers}),
    }


def add_routes(r: APIRouter, ctx: Door, page: Page, failure: Failure) -> None:
    """Add ``/assets`` and ``/assets/{key}`` to ``r`` (``page`` renders a template with the
    values every page has; ``failure`` the error page of a service's refusal)."""

    @r.get("/assets")
    def catalog(
        request: Request,
        search: Annotated[str | None, Query(max_length=200)] = None,
        stale: Annotated[bool, Query()] = False,
        offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    ) -> HTMLResponse:
        try:
            found = ctx.assets.catalog(
                search=search or None, stale=stale, limit=CATALOG_PAGE + 1, offset=offset
            )
        except ServiceError as exc:
            return failure(request, exc)

        def link(at: int) -> str:
            kept = ({"search": search} if search else {}) | ({"stale": "true"} if stale else {})
            return "/assets?" + urlencode(kept | {"offset": at})

        return page(
            request,
            "assets.html",
            assets=found[:CATALOG_PAGE],
            search=search or "",
            stale=stale,
            offset=offset,
            newer=link(max(offset - CATALOG_PAGE, 0)) if offset > 0 else None,
            older=link(offset + CATALOG_PAGE) if len(found) > CATALOG_PAGE else None,
        )

    @r.get("/assets/{key:path}")
    def asset(
        request: Request,
        key: str,
        partition: Annotated[str | None, Query(max_length=500)] = None,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> HTMLResponse:
        try:
            view = ctx.assets.asset(key, history=CHART_POINTS)
            history = ctx.assets.materializations(
                key, partition=partition or None, before_id=before, limit=HISTORY_PAGE + 1
            )
            checked = ctx.checks.results(asset=key, limit=CHECK_RESULTS)
            around = ctx.assets.lineage(focus=key, depth=1, limit=NEIGHBOURS)
        except ServiceError as exc:
            return failure(request, exc)
        older = None
        if len(history) > HISTORY_PAGE:
            older = "?" + urlencode(
                ({"partition": partition} if partition else {})
                | {"before": history[HISTORY_PAGE - 1].id}
            )
        latest = view.history[0] if view.history else None
        return page(
            request,
            "asset.html",
            materialize=_materialize_form(request, view),
            a=view,
            e=view.entry,
            latest=latest,
            meta=_latest_metadata(latest),
            chart=render_rows(view.history),
            history=history[:HISTORY_PAGE],
            partition=partition or "",
            paged=before is not None,
            older=older,
            checks=_newest_per_check(checked),
            check_history=checked[:CHECK_HISTORY],
            around=draw(around, key) if len(around.nodes) > 1 else "",
            around_cut=around.cut,
        )
