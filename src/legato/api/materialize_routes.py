"""``POST /api/v1/assets/{key}/materialize``: queue a run of the asset's producing pipeline
limited to the producing task and its upstream, reusing fresh inputs (``door.materialize``).
Allowed to whoever may launch a run of that pipeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from legato.api.asset_routes import AssetKey
from legato.api.http_errors import ERRORS
from legato.api.schemas import Body, RunOut
from legato.services.door import Door


class MaterializeIn(Body):
    """What to materialize the asset for."""

    # Kept in an index with the run, as a launch's: a key of reasonable size.
    partition: str | None = Field(
        default=None, max_length=500, description="the partition (a partitioned asset)"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the pipeline's params")
    pipeline: str | None = Field(
        default=None, max_length=200, description="the producing pipeline, when several are"
    )


def router(ctx: Door) -> APIRouter:
    """The materialize route over ``ctx``."""
    r = APIRouter(responses=ERRORS, tags=["assets"])

    @r.post(
        "/assets/{key}/materialize", response_model=RunOut, status_code=201,
        summary="Materialize an asset",
    )  # fmt: skip
    def materialize(key: AssetKey, body: MaterializeIn | None = None) -> RunOut:
        """Queue a run of the pipeline producing ``key`` that runs the producing task and
        the tasks upstream of it; an upstream task is reused from the newest finished run of
        the same partition, params and code while its result is kept and its assets are
        fresh; every other task is skipped. The scheduler starts it."""
        given = body or MaterializeIn()
        run = ctx.materialize.queue(
            key, partition=given.partition, params=given.params, pipeline=given.pipeline
        )
        return RunOut.of(ctx.queued(run))

    return r
