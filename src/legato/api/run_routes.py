"""Routes of runs: the filtered list, one run, its events and logs (also live), and actions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BeforeValidator

from legato.api import streams
from legato.api.http_errors import ERRORS
from legato.api.schemas import (
    CodeChangesOut,
    EventOut,
    MarkIn,
    RerunIn,
    RunDetailOut,
    RunOut,
    RunPageOut,
)
from legato.domain.states import RunState
from legato.services.door import Door
from legato.services.service_errors import ServiceError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: The largest event id the stores can hold (a signed 64-bit integer).
MAX_EVENT_ID = 2**63 - 1
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}


_DATE = re.compile(r"\s*[+-]?\d{4,}-\d")


def _date_and_time(value: object) -> object:
    # Pydantic reads a number as seconds since 1970; the document promises a date-time.
    if isinstance(value, str | int | float) and not (isinstance(value, str) and _DATE.match(value)):
        raise ValueError("must be a date and time, e.g. 2026-03-02T09:00:00Z")
    return value


#: A time in a query: ISO 8601 text only.
QueryTime = Annotated[datetime | None, BeforeValidator(_date_and_time)]


def utc_time(t: datetime | None, field: str) -> datetime | None:
    """``t`` in UTC (a time without an offset is taken as UTC); ServiceError when out of range."""
    if t is None:
        return None
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    try:
        return t.astimezone(UTC)  # what the store does: it may leave datetime's range
    except OverflowError:
        raise ServiceError(f"{field}: {t.isoformat()} is out of range", field) from None


def router(ctx: Door) -> APIRouter:
    """The /runs routes over ``ctx``."""
    r = APIRouter(prefix="/runs", tags=["runs"], responses=ERRORS)

    @r.get("", response_model=RunPageOut, summary="List runs")
    def list_runs(
        pipeline: str | None = None,
        state: Annotated[list[RunState], Query(description="one or more run states")] = [],  # noqa: B006
        partition: str | None = None,
        created_after: QueryTime = None,
        created_before: QueryTime = None,
        environment: Annotated[
            str | None, Query(max_length=200, description="runs made in this environment")
        ] = None,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> RunPageOut:
        """Runs newest first. Page with ``cursor`` = the previous page's ``next_cursor``."""
        page = ctx.catalog.runs(
            pipeline=pipeline,
            states=state,
            partition=partition,
            environment=environment,
            created_after=utc_time(created_after, "created_after"),
            created_before=utc_time(created_before, "created_before"),
            cursor=cursor,
            limit=limit,
        )
        return RunPageOut(runs=[RunOut.of(x) for x in page.runs], next_cursor=page.next_cursor)

    @r.get("/{run_id}", response_model=RunDetailOut, summary="One run")
    def get_run(run_id: str) -> RunDetailOut:
        """The run with its graph, task runs and attempts."""
        out = RunDetailOut.of(ctx.catalog.run(run_id))
        out.pruned = sorted(ctx.runs.pruned(run_id))
        return out

    @r.get("/{run_id}/code", response_model=CodeChangesOut, summary="A run's code changes")
    def code_changes(run_id: str) -> CodeChangesOut:
        """The run's code version and the files that changed since the pipeline's previous
        run: added, removed, changed, with unified diffs of the project folder's files."""
        return CodeChangesOut.of(ctx.catalog.code_changes(run_id))

    @r.get("/{run_id}/events", response_model=list[EventOut], summary="A run's events")
    def events(
        run_id: str,
        after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> list[EventOut]:
        """State changes of the run and its tasks with id > ``after``, oldest first."""
        return [EventOut.of(e) for e in ctx.catalog.events(run_id, after, limit)]

    @r.get("/{run_id}/events/stream", responses=_SSE, summary="A run's events, live")
    def event_stream(
        run_id: str,
        request: Request,
        after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID)] = 0,
        last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    ) -> StreamingResponse:
        """Server-sent events: ``event`` per state change, ``end`` when the run finishes."""
        ctx.catalog.get_run(run_id)
        start = after
        if last_event_id and last_event_id.isascii() and last_event_id.isdigit():
            start = min(int(last_event_id), MAX_EVENT_ID)
        return StreamingResponse(
            streams.run_events(ctx, run_id, start, request),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    @r.get(
        "/{run_id}/tasks/{task_key}/attempts/{attempt}/log",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}}},
        summary="An attempt's log",
    )
    def log(run_id: str, task_key: str, attempt: int) -> PlainTextResponse:
        """Everything the attempt printed (so far, while it runs)."""
        entry = ctx.catalog.log(run_id, task_key, attempt)
        # The log's own last lines say how it was cut; the header says it without reading it.
        note = entry.note.encode("ascii", "replace").decode() if entry.note else None
        headers = {"X-Legato-Log-Note": note} if note else None
        return PlainTextResponse(entry.text(), headers=headers)

    @r.get(
        "/{run_id}/tasks/{task_key}/attempts/{attempt}/log/stream",
        responses=_SSE,
        summary="An attempt's log, live",
    )
    def log_stream(
        run_id: str,
        task_key: str,
        attempt: int,
        request: Request,
        offset: Annotated[int, Query(ge=0, description="start at this byte")] = 0,
    ) -> StreamingResponse:
        """Server-sent events: ``log`` with new text, ``end`` once the attempt is over."""
        entry = ctx.catalog.log(run_id, task_key, attempt)
        return StreamingResponse(
            streams.attempt_log(ctx, run_id, task_key, attempt, entry.path, request, offset),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    @r.post("/{run_id}/cancel", response_model=RunOut, summary="Cancel a run")
    def cancel(run_id: str) -> RunOut:
        """Stop the run: running tasks are killed, the rest never start."""
        ctx.catalog.get_run(run_id)
        return RunOut.of(ctx.runs.cancel(run_id))

    @r.post("/{run_id}/rerun", response_model=RunOut, status_code=201, summary="Re-run")
    def rerun(run_id: str, body: RerunIn | None = None) -> RunOut:
        """A new run reusing this one's results: from failure, or from ``task`` downstream."""
        ctx.catalog.get_run(run_id)
        task = body.task if body is not None else None
        return RunOut.of(ctx.queued(ctx.runs.rerun(run_id, task=task)))

    @r.post("/{run_id}/tasks/{task_key}/mark", response_model=RunOut, summary="Mark a task")
    def mark(run_id: str, task_key: str, body: MarkIn) -> RunOut:
        """Mark a task of a finished run succeeded or failed; the run's state follows."""
        return RunOut.of(ctx.catalog.mark_task(run_id, task_key, body.state))

    return r
