"""The web UI's routes: server-rendered pages over the same services as the API.

Every page has its own URL (filters and selections are query parameters), so the browser's
back button and bookmarks work. Actions are buttons whose script calls the JSON API; the run
page follows the run's event stream and redraws its live part.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from legato.config import ProjectConfig
from legato.domain.alert_records import AlertRecord
from legato.domain.states import RunState
from legato.services.door import Door
from legato.services.project import CodeState
from legato.services.resources_service import CheckResult
from legato.services.service_errors import Forbidden, ServiceError, status_of
from legato.web import (
    asset_pages,
    graphs,
    lineage_page,
    partition_section,
    run_pages,
    signin,
    views,
)
from legato.web.gantt import format_duration

HERE = Path(__file__).parent
STATES = [s.value for s in RunState]
#: The overview page's sections in page order, one template each (``templates/overview/``);
#: each sees the page's values, the service's figures as ``o``.
OVERVIEW_SECTIONS = (
    "overview/alerts.html",
    "overview/runs.html",
    "overview/slowest.html",
    "overview/failing.html",
    "overview/trends.html",
)


def _templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals.update(
        ago=views.ago, took=views.took, when=views.when, q=views.q, duration=format_duration,
        is_production=views.is_production,
    )
    t.env.trim_blocks = True
    t.env.lstrip_blocks = True
    return t


def mount(app: FastAPI, ctx: Door, settings: ProjectConfig) -> None:
    """Add the UI's pages and static files to ``app`` (``settings``: the project's, read
    once by the app's maker: the pages act for each request's sender, who may be nobody)."""
    templates = _templates()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    r = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    signin.mount(app, ctx, templates, settings)

    def code_state() -> CodeState | None:
        try:
            return ctx.project.code_state()
        except Forbidden:  # a role that reads no pipelines sees no load errors either
            return None

    def page(request: Request, name: str, code: int = 200, **values: Any) -> HTMLResponse:
        now = ctx.clock()
        health = ctx.catalog.health()
        return templates.TemplateResponse(
            request,
            name,
            {
                "now": now,
                "health": health,
                "project": ctx.project.settings().name,
                "environment": settings.environment,
                # Load errors show on every page; the banner follows the code as it reloads.
                "code": code_state(),
                **signin.context(request),
                **values,
            },
            status_code=code,
        )

    def failure(request: Request, exc: Exception) -> HTMLResponse:
        status = status_of(exc)
        return page(request, "error.html", status, message=str(exc), status=status)

    @r.get("/")
    def overview(request: Request) -> HTMLResponse:
        return page(request, "pipelines.html", pipelines=ctx.catalog.pipelines())

    @r.get("/load-errors")
    def load_errors(request: Request) -> HTMLResponse:
        # The banner alone, for the pages' script to swap in when the code changes.
        return page(request, "_load_errors.html")

    @r.get("/overview")
    def overview_page(request: Request) -> HTMLResponse:
        figures = ctx.overview.figures()
        try:
            open_alerts: list[AlertRecord] | None = ctx.alerts.open_alerts()
            sla_misses = ctx.alerts.sla_misses(figures.now - timedelta(days=7))
        except Forbidden:  # a custom role may read runs and not alerts
            open_alerts, sla_misses = None, []
        return page(
            request,
            "overview.html",
            o=figures,
            open_alerts=open_alerts,
            sla_misses=sla_misses,
            sections=OVERVIEW_SECTIONS,
            **views.overview_charts(figures),
        )

    @r.get("/pipelines/{name}")
    def pipeline(
        request: Request,
        name: str,
        zoom: Annotated[str, Query(max_length=20)] = "",
        state: Annotated[list[str], Query()] = [],  # noqa: B006
        first: Annotated[str, Query(alias="from", max_length=200)] = "",
        last: Annotated[str, Query(alias="to", max_length=200)] = "",
        cursor: Annotated[str, Query(max_length=200)] = "",
    ) -> HTMLResponse:
        try:
            detail = ctx.catalog.pipeline(name)
        except ServiceError as exc:
            return failure(request, exc)
        parts = ctx.project.pipeline(detail.overview.name).automation.partitions
        shown = None
        if parts is not None:
            given = partition_section.Filters(
                zoom, tuple(s for s in state if s), first.strip(), last.strip(), cursor
            )
            try:
                shown = partition_section.section(ctx, detail.overview.name, parts, given)
            except Forbidden:  # a custom role may read pipelines and not their partitions
                shown = None
        return page(
            request,
            "pipeline.html",
            p=detail,
            dag=graphs.pipeline_dag(
                detail.nodes, run_pages.expanded(request), run_pages.expand_url(request)
            ),
            parts=shown,
            backfills=ctx.automation.backfills(pipeline=detail.overview.name)[:10],
            refused=ctx.automation.trigger_events(
                detail.overview.name, refused_only=True, limit=20
            ),
        )

    @r.get("/pipelines/{name}/launch")
    def launch(
        request: Request,
        name: str,
        partition: str | None = None,
        materialize: str | None = None,
    ) -> HTMLResponse:
        """The run launcher; with ``materialize=KEY``, the same form materializes that asset
        with this pipeline (the producing task and what it needs, with these params)."""
        try:
            detail = ctx.catalog.pipeline(name)
            if materialize is not None:
                ctx.assets.asset(materialize)  # NotFound before a form that cannot work
        except ServiceError as exc:
            return failure(request, exc)
        keys = detail.newest_keys
        return page(
            request,
            "launch.html",
            p=detail,
            fields=[views.form_field(x) for x in detail.params],
            partition=partition or (keys[-1] if keys else ""),
            keys=keys,
            materialize=materialize,
        )

    @r.get("/runs")
    def runs(
        request: Request,
        pipeline: str | None = None,
        state: Annotated[list[str], Query()] = [],  # noqa: B006
        partition: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        environment: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> HTMLResponse:
        chosen = [s for s in state if s]
        filters: dict[str, Any] = {
            "pipeline": pipeline or "",
            "state": chosen,
            "partition": partition or "",
            "created_after": created_after or "",
            "created_before": created_before or "",
            "environment": environment or "",
            "limit": limit,
        }
        try:
            found = ctx.catalog.runs(
                pipeline=pipeline or None,
                states=chosen,
                partition=partition or None,
                created_after=_when(created_after, "created_after"),
                created_before=_when(created_before, "created_before"),
                environment=environment or None,
                cursor=cursor or None,
                limit=limit,
            )
        except ServiceError as exc:
            return failure(request, exc)
        kept = [(k, v) for k, v in filters.items() if k != "state" and v and k != "limit"]
        kept += [("state", s) for s in chosen]
        if limit != 50:
            kept.append(("limit", str(limit)))
        older = None
        if found.next_cursor:
            older = "/runs?" + urlencode([*kept, ("cursor", found.next_cursor)])
        return page(
            request,
            "runs.html",
            page_=found,
            filters=filters,
            pipelines=sorted(ctx.project.pipelines()),
            states=STATES,
            environments=ctx.project.settings().environments,
            newest_url=("/runs?" + urlencode(kept)) if cursor else None,
            older_url=older,
        )

    @r.get("/backfills")
    def backfills(request: Request, pipeline: str | None = None) -> HTMLResponse:
        return page(
            request, "backfills.html", backfills=ctx.automation.backfills(pipeline=pipeline or None)
        )

    @r.get("/backfills/{backfill_id}")
    def backfill(request: Request, backfill_id: str, offset: int = 0) -> HTMLResponse:
        # A page of its keys with their runs: a backfill of ten years of hours is 87,600.
        try:
            view = ctx.automation.backfill(backfill_id)
            keys = ctx.automation.backfill_keys(view.record.id, offset=max(0, offset))
        except ServiceError as exc:
            return failure(request, exc)
        return page(request, "backfill.html", b=view, keys=keys, offset=max(0, offset))

    @r.get("/queue")
    def queue(request: Request) -> HTMLResponse:
        return page(request, "queue.html", queued=ctx.automation.queue())

    @r.get("/audit")
    def audit(
        request: Request,
        actor: str | None = None,
        action: str | None = None,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> HTMLResponse:
        try:
            rows = ctx.audit.entries(
                actor=actor or None, action=action or None, before_seq=before, limit=100
            )
        except ServiceError as exc:
            return failure(request, exc)
        older = None
        if len(rows) == 100:
            older = "/audit?" + urlencode(
                {k: v for k, v in (("actor", actor), ("action", action)) if v}
                | {"before": rows[-1].seq}
            )
        return page(request, "audit.html", rows=rows, actor=actor, action=action, older=older)

    @r.get("/alerts")
    def alerts(request: Request) -> HTMLResponse:
        try:
            rules = ctx.alerts.rules()
        except ServiceError as exc:
            return failure(request, exc)
        return page(
            request, "alerts.html", views=ctx.alerts.recent(100), rules=rules,
            silences={s.rule: s for s in ctx.alerts.silences()},
        )

    def resources_page(
        request: Request, checked: list[CheckResult] | None = None
    ) -> HTMLResponse:
        actor = getattr(request.state, "actor", None)
        return page(
            request,
            "resources.html",
            resources=ctx.resources.describe(),
            may_check=actor is not None and actor.may("resources.check"),
            checked={c.name: c for c in checked or ()},
            shown=views.setting_text,
        )

    @r.get("/resources")
    def resources(request: Request) -> HTMLResponse:
        return resources_page(request)

    @r.post("/resources/check")
    def check_resources(
        request: Request, name: Annotated[str | None, Form(max_length=200)] = None
    ) -> HTMLResponse:
        # A form, not the script: the page that answers shows how each check went.
        try:
            checked = ctx.resources.check([name] if name else None)
        except ServiceError as exc:
            return failure(request, exc)
        return resources_page(request, checked)

    run_pages.add_routes(r, ctx, page, failure)
    asset_pages.add_routes(r, ctx, page, failure)
    lineage_page.add_routes(r, ctx, page, failure)
    app.include_router(r)

    # The API's handler, when it is installed, answers everything but the UI's own 404s.
    previous = app.exception_handlers.get(StarletteHTTPException)

    @app.exception_handler(StarletteHTTPException)
    async def not_found_page(request: Request, exc: StarletteHTTPException) -> Any:
        from fastapi.exception_handlers import http_exception_handler

        if request.url.path.startswith("/api/") or exc.status_code != 404:
            answer = (previous or http_exception_handler)(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return page(request, "error.html", 404, message="There is no such page.", status=404)


def _when(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ServiceError(f"{field}: {text!r} is not a date and time", field) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
