"""The web UI's run page and its parts: the graph (look-alike tasks folded into one box), the
task table and the timeline a page at a time, filtered, and the live changes the page's script
asks for (``/runs/{id}/changes?after=EVENT``: only what changed since the event it has), all
read through ``door.catalog``."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from legato.domain.records import StoreError
from legato.domain.states import TaskState
from legato.services.catalog import RunDetail
from legato.services.door import Door
from legato.services.pruned_results import pruned_notes
from legato.services.service_errors import ServiceError, status_of
from legato.web import graphs, run_tables, views
from legato.web.run_tables import TaskFilter

TASK_STATES = [s.value for s in TaskState]
#: Events a live change lists task by task; past this, it sends the table's first page again.
CHANGES_LIMIT = 1000

Page = Callable[..., HTMLResponse]
Failure = Callable[[Request, Exception], HTMLResponse]


def add_routes(r: APIRouter, ctx: Door, page: Page, failure: Failure) -> None:
    """The run page's routes, on the UI's router."""

    def run_parts(
        request: Request, run_id: str, task: str | None, attempt: int | None, f: TaskFilter
    ) -> dict[str, Any]:
        detail = ctx.catalog.run(run_id, attempts=False)
        now = ctx.clock()
        chosen = task if task is not None else views.choose_task(detail)
        # The attempts of the tasks shown only: a 10,000-task run has ten thousand more.
        detail = with_attempts(detail, f, chosen)
        entries = ctx.runs.logs(run_id, chosen) if chosen is not None else []
        failed = any(t.state in ("failed", "upstream_failed", "canceled") for t in detail.tasks)
        return {
            "d": detail,
            "filter": f,
            "page": run_tables.task_page(detail, f),
            "task_states": TASK_STATES,
            "dag": graphs.run_dag(detail, expanded(request), expand_url(request)),
            "timeline": run_tables.timeline(detail, f, now),
            "log": views.log_panel(detail, entries, chosen, attempt),
            "can_rerun_failed": detail.run.state.finished and failed,
            "checks": ctx.checks.of_run(detail.run.id),
            "pruned": pruned_notes(ctx.runs.pruned(detail.run.id)),
        }

    def with_attempts(detail: RunDetail, f: TaskFilter, chosen: str | None) -> RunDetail:
        keys, _ = run_tables.timeline_keys(detail, f)
        keys += [chosen] if chosen is not None else []
        return replace(detail, attempts=ctx.catalog.attempts_of(detail.run.id, keys))

    @r.get("/runs/{run_id}")
    @r.get("/runs/{run_id}/live")  # the live part alone
    def run(
        request: Request,
        run_id: str,
        f: Annotated[TaskFilter, Depends(task_filter)],
        task: str | None = None,
        attempt: int | None = None,
    ) -> HTMLResponse:
        live = request.url.path.endswith("/live")
        template = "run_live.html" if live else "run.html"
        return run_page(request, template, run_id, task, attempt, f)

    @r.get("/runs/{run_id}/tasks")
    @r.get("/runs/{run_id}/timeline")
    def run_rows(
        request: Request,
        run_id: str,
        f: Annotated[TaskFilter, Depends(task_filter)],
        task: str | None = None,
    ) -> HTMLResponse:
        """A page of the task table's rows or of the timeline, for the run page's script to
        append as the user scrolls."""
        timeline = request.url.path.endswith("/timeline")
        try:
            detail = ctx.catalog.run(run_id, attempts=False)
            if timeline:
                detail = with_attempts(detail, f, None)
        except (ServiceError, StoreError) as exc:
            return failure(request, exc)
        if timeline:
            return page(
                request, "_run_timeline.html", d=detail, filter=f,
                timeline=run_tables.timeline(detail, f, ctx.clock()),
            )
        return page(
            request,
            "_task_rows.html",
            d=detail,
            filter=f,
            log={"task": task},  # the selected task's row is marked
            page=run_tables.task_page(detail, f),
            checks=ctx.checks.of_run(detail.run.id),
        )

    @r.get("/runs/{run_id}/changes", response_class=JSONResponse)
    def run_changes(
        request: Request,
        run_id: str,
        f: Annotated[TaskFilter, Depends(task_filter)],
        after: Annotated[int, Query(ge=0)] = 0,
        task: str | None = None,
        attempt: int | None = None,
        tick: bool = False,
    ) -> Response:
        """What changed on the run page since event ``after``: the parts to redraw as HTML
        (the head, the graph, the timeline's first page, the rows of the tasks that changed
        and the log, when its task did) and the event id they are as of. ``tick``: the page's
        clock asks, every few seconds, to redraw the timeline's running bars."""
        f = replace(f, offset=0)  # the script asks for the page as first drawn
        try:
            events = ctx.catalog.events(run_id, after, limit=CHANGES_LIMIT + 1)
            parts = run_parts(request, run_id, task, attempt, f)
        except (ServiceError, StoreError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=status_of(exc))
        detail: RunDetail = parts["d"]
        changed = {e.task_key for e in events if e.task_key is not None}
        every = len(events) > CHANGES_LIMIT  # too many to list: the first page again
        rows = [t for t in detail.tasks if t.task_key in changed and f.matches(t)]
        # The timeline's first page is redrawn when a task that has a bar, or the run,
        # changed (either may reorder it), or on the clock's tick while the run lasts (its
        # running bars grow); not for tasks yet to start, nor when nothing changed.
        redraw = every or any(e.task_key is None for e in events)
        redraw = redraw or any(t.attempt or t.started_at for t in detail.tasks
                               if t.task_key in changed)
        redraw = redraw or (tick and not detail.run.state.finished)

        def part(name: str, **values: Any) -> str:
            return bytes(page(request, name, **{**parts, **values}).body).decode()

        return JSONResponse({
            "version": detail.last_event_id,
            "finished": detail.run.state.finished,
            "head": part("_run_head.html"),
            "graph": part("_run_graph.html"),
            "timeline": part("_run_timeline.html") if redraw else None,
            # One <tbody> each, to swap for the page's own.
            "rows": None if every else part("_task_rows.html", page=run_tables.rows_of(rows)),
            "tasks": part("_task_rows.html") if every else None,
            "log": part("_run_log.html") if parts["log"].task in changed or every else None,
        })

    @r.get("/runs/{run_id}/code")
    def run_code(request: Request, run_id: str) -> HTMLResponse:
        try:
            changes = ctx.catalog.code_changes(run_id)
        except (ServiceError, StoreError) as exc:
            return failure(request, exc)
        return page(request, "code.html", c=changes)

    def run_page(
        request: Request,
        template: str,
        run_id: str,
        task: str | None,
        attempt: int | None,
        f: TaskFilter,
    ) -> HTMLResponse:
        try:
            parts = run_parts(request, run_id, task, attempt, f)
        except (ServiceError, StoreError) as exc:
            return failure(request, exc)
        return page(request, template, **parts)


def task_filter(
    state: Annotated[list[str], Query()] = [],  # noqa: B006
    name: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=run_tables.MAX_PAGE)] = run_tables.PAGE,
) -> TaskFilter:
    """The run page's filter of its task table and timeline, from the query."""
    return TaskFilter(tuple(s for s in state if s), name, offset, limit)


def expanded(request: Request) -> list[str]:
    return request.query_params.getlist("expand")


def expand_url(request: Request) -> graphs.ExpandUrl:
    """The page's URL with other groups expanded, the rest of its query kept (but its
    offset: a redrawn graph starts the table again)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("expand", "offset")]

    def url(groups: Collection[str]) -> str:
        query = urlencode([*kept, *(("expand", g) for g in groups)])
        return request.url.path + (f"?{query}" if query else "")

    return url
