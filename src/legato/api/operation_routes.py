"""Routes of operations: backfills, the run queue, and health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from legato.api.http_errors import ERRORS
from legato.api.schemas import (
    BackfillIn,
    BackfillKeysOut,
    BackfillOut,
    HealthOut,
    MoveIn,
    RunOut,
)
from legato.domain.states import BackfillState
from legato.services.door import Door


def router(ctx: Door) -> APIRouter:
    """The /backfills, /queue and /health routes over ``ctx``."""
    r = APIRouter(responses=ERRORS)

    @r.get("/backfills", response_model=list[BackfillOut], tags=["backfills"])
    def list_backfills(
        pipeline: str | None = None, active: Annotated[bool, Query()] = False
    ) -> list[BackfillOut]:
        """Backfills newest first, with their progress (``active``: unfinished only)."""
        found = ctx.automation.backfills(pipeline=pipeline, active=active)
        return [BackfillOut.of(b) for b in found]

    @r.post("/backfills", response_model=BackfillOut, status_code=201, tags=["backfills"])
    def create_backfill(body: BackfillIn) -> BackfillOut:
        """Backfill partition keys, or a range ``start``..``end``, a few runs at a time.

        Without ``all`` only partitions never run, or whose newest run failed or was
        canceled, are included.
        """
        record = ctx.automation.create_backfill(
            body.pipeline,
            first=body.start,
            last=body.end,
            keys=body.partitions,
            all_partitions=body.all,
            max_concurrent=body.max_concurrent,
            params=body.params,
        )
        ctx.on_run(None)
        return BackfillOut.of(ctx.automation.backfill(record.id))

    @r.get("/backfills/{backfill_id}", response_model=BackfillOut, tags=["backfills"])
    def get_backfill(backfill_id: str) -> BackfillOut:
        """One backfill with its progress."""
        return BackfillOut.of(ctx.automation.backfill(backfill_id))

    @r.get("/backfills/{backfill_id}/keys", response_model=BackfillKeysOut, tags=["backfills"])
    def backfill_keys(
        backfill_id: str,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> BackfillKeysOut:
        """A backfill's partition keys a page at a time, in the order its runs are made, each
        with the state of its run."""
        page = ctx.automation.backfill_keys(backfill_id, offset=offset, limit=limit)
        return BackfillKeysOut.of(page)

    def _set(backfill_id: str, state: BackfillState) -> BackfillOut:
        view = ctx.automation.set_backfill_state(backfill_id, state)
        ctx.on_run(None)
        return BackfillOut.of(view)

    @r.post("/backfills/{backfill_id}/pause", response_model=BackfillOut, tags=["backfills"])
    def pause(backfill_id: str) -> BackfillOut:
        """Start no more of its runs (those under way go on)."""
        return _set(backfill_id, BackfillState.PAUSED)

    @r.post("/backfills/{backfill_id}/resume", response_model=BackfillOut, tags=["backfills"])
    def resume(backfill_id: str) -> BackfillOut:
        """Carry on with a paused backfill."""
        return _set(backfill_id, BackfillState.RUNNING)

    @r.post("/backfills/{backfill_id}/cancel", response_model=BackfillOut, tags=["backfills"])
    def cancel(backfill_id: str) -> BackfillOut:
        """Stop the backfill and cancel its unfinished runs."""
        return _set(backfill_id, BackfillState.CANCELED)

    @r.get("/queue", response_model=list[RunOut], tags=["queue"])
    def queue() -> list[RunOut]:
        """Queued runs in the order they will start."""
        return [RunOut.of(x) for x in ctx.automation.queue()]

    @r.post("/queue/{run_id}/move", response_model=RunOut, tags=["queue"])
    def move(run_id: str, body: MoveIn) -> RunOut:
        """Move a queued run to the top or the bottom of its priority."""
        ctx.catalog.get_run(run_id)
        return RunOut.of(ctx.automation.move(run_id, body.to))

    @r.get(
        "/health",
        response_model=HealthOut,
        tags=["health"],
        responses={503: {"model": HealthOut, "description": "the store is unreachable"}},
    )
    def health() -> JSONResponse:
        """Store reachable, scheduler alive (a daemon beat in the last 15 s), version."""
        out = HealthOut.of(ctx.catalog.health())
        return JSONResponse(
            out.model_dump(mode="json"), status_code=200 if out.store == "ok" else 503
        )

    return r
