"""The web UI's lineage graph (``/lineage``): the asset graph across pipelines drawn as SVG
with the run page's layered layout, each asset coloured by its freshness and linked to its
page; and the small neighbourhood graph an asset's page shows.

A catalog of thousands of assets is never drawn whole: without ``focus`` the page draws the
first ``GRAPH_CAP`` assets by key and says so; ``?focus=KEY&depth=N`` draws the assets within
N edges of one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from legato.services.assets_service import Lineage
from legato.services.door import Door
from legato.services.service_errors import ServiceError
from legato.web.dag_layout import DagNode, render_svg

#: Most assets one drawing holds.
GRAPH_CAP = 150
#: How far from its focus the page looks by default.
DEPTH = 2

Page = Callable[..., HTMLResponse]
Failure = Callable[[Request, Exception], HTMLResponse]


def draw(graph: Lineage, focus: str | None = None) -> str:
    """``graph`` as an inline SVG: a box per asset (class ``state-fresh``, ``state-stale``,
    ``state-never``; none for an asset without policy) linking to its page."""
    ups: dict[str, list[str]] = {n.key: [] for n in graph.nodes}
    for up, down in graph.edges:
        ups[down].append(up)
    nodes = []
    for n in graph.nodes:
        f = n.freshness
        detail: str = f.state if f.state != "none" else ""
        if n.key == focus:
            detail = (detail + " · focus").lstrip(" ·")
        nodes.append(DagNode(n.key, n.key, tuple(ups[n.key]), f.state, False, detail))
    return render_svg(nodes, link=lambda key: f"/assets/{quote(key, safe='')}")


def add_routes(r: APIRouter, ctx: Door, page: Page, failure: Failure) -> None:
    """Add ``/lineage`` to ``r``."""

    @r.get("/lineage")
    def lineage(
        request: Request,
        focus: Annotated[str | None, Query(max_length=200)] = None,
        depth: Annotated[int, Query(ge=0, le=50)] = DEPTH,
    ) -> HTMLResponse:
        try:
            graph = ctx.assets.lineage(focus=focus or None, depth=depth, limit=GRAPH_CAP)
        except ServiceError as exc:
            return failure(request, exc)
        stale = [n for n in graph.nodes if n.freshness.stale]
        return page(
            request,
            "lineage.html",
            svg=draw(graph, focus or None) if graph.nodes else "",
            graph=graph,
            stale=stale,
            focus=focus or "",
            depth=depth,
            capped=graph.cut,
            cap=GRAPH_CAP,
        )
