"""Routes of pipelines: list, detail, partitions, launching runs, pausing schedules and triggers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from legato.api.http_errors import ERRORS
from legato.api.schemas import (
    LaunchIn,
    PartitionOut,
    PartitionPageOut,
    PartitionSummaryOut,
    PausedOut,
    PipelineDetailOut,
    PipelineOut,
    RunOut,
)
from legato.services.door import Door
from legato.services.partition_views import MAX_PAGE


def router(ctx: Door) -> APIRouter:
    """The /pipelines routes over ``ctx``."""
    r = APIRouter(prefix="/pipelines", tags=["pipelines"], responses=ERRORS)

    @r.get("", response_model=list[PipelineOut], summary="List pipelines")
    def list_pipelines() -> list[PipelineOut]:
        """Every pipeline with its last runs, next scheduled run, schedules and triggers."""
        return [PipelineOut.of(p) for p in ctx.catalog.pipelines()]

    @r.get("/{pipeline}", response_model=PipelineDetailOut, summary="One pipeline")
    def get_pipeline(pipeline: str) -> PipelineDetailOut:
        """The DAG, params and their JSON schema, how it is partitioned (with the paged
        partitions endpoint and their summary's), schedules, triggers."""
        return PipelineDetailOut.of_detail(ctx.catalog.pipeline(pipeline))

    @r.get(
        "/{pipeline}/partitions", response_model=PartitionPageOut, summary="Partition states"
    )
    def partitions(
        pipeline: str,
        state: Annotated[
            list[str], Query(description="missing (never run) or a run state; repeatable")
        ] = [],  # noqa: B006
        first: Annotated[str | None, Query(alias="from", max_length=200)] = None,
        last: Annotated[str | None, Query(alias="to", max_length=200)] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> PartitionPageOut:
        """Partitions that exist now in key order, each with the state of its newest run,
        filtered by state and key range (``from``/``to`` included). Page with ``cursor`` =
        the previous page's ``next_cursor``."""
        page = ctx.partitions.page(
            pipeline, states=state, first=first, last=last, cursor=cursor, limit=limit
        )
        return PartitionPageOut(
            partitions=[PartitionOut.of(p) for p in page.partitions],
            total=page.total,
            next_cursor=page.next_cursor,
        )

    @r.get(
        "/{pipeline}/partitions/summary",
        response_model=PartitionSummaryOut,
        summary="Partition states, summed up",
    )
    def partition_summary(
        pipeline: str,
        granularity: Annotated[
            str | None, Query(description="year, month, day or hour (time partitions)")
        ] = None,
        first: Annotated[str | None, Query(alias="from", max_length=200)] = None,
        last: Annotated[str | None, Query(alias="to", max_length=200)] = None,
        ranges: Annotated[
            int, Query(ge=0, le=100_000, description="newest ranges of each kind listed")
        ] = 100,
    ) -> PartitionSummaryOut:
        """Partitions counted by state (and per bucket of time), with the newest ranges of
        failed and never-run ones (``ranges`` of each; ``failed_ranges`` and
        ``missing_ranges`` say how many there are in all)."""
        s = ctx.partitions.summary(
            pipeline, granularity=granularity, first=first, last=last, ranges=ranges
        )
        # Read off the dataclasses: asdict deep-copied 5,000 failed ranges in 30 ms.
        return PartitionSummaryOut.model_validate(s, from_attributes=True)

    @r.post("/{pipeline}/runs", response_model=RunOut, status_code=201, summary="Launch a run")
    def launch(pipeline: str, body: LaunchIn) -> RunOut:
        """Queue a run with these params (and partition); the scheduler starts it."""
        run = ctx.automation.submit(
            pipeline, body.params, partition=body.partition, priority=body.priority
        )
        return RunOut.of(ctx.queued(run))

    def _pause(pipeline: str, name: str | None, paused: bool) -> PausedOut:
        ctx.automation.set_schedule_paused(pipeline, paused, name)
        return PausedOut(pipeline=pipeline, name=name, paused=paused)

    @r.post("/{pipeline}/schedules/pause", response_model=PausedOut, summary="Pause schedules")
    def pause_all(pipeline: str) -> PausedOut:
        """Pause every schedule of the pipeline."""
        return _pause(pipeline, None, True)

    @r.post("/{pipeline}/schedules/unpause", response_model=PausedOut, summary="Unpause schedules")
    def unpause_all(pipeline: str) -> PausedOut:
        """Unpause every schedule of the pipeline; ticks missed while paused are skipped."""
        return _pause(pipeline, None, False)

    @r.post(
        "/{pipeline}/schedules/{name}/pause", response_model=PausedOut, summary="Pause a schedule"
    )
    def pause_one(pipeline: str, name: str) -> PausedOut:
        """Pause one schedule."""
        return _pause(pipeline, name, True)

    @r.post(
        "/{pipeline}/schedules/{name}/unpause",
        response_model=PausedOut,
        summary="Unpause a schedule",
    )
    def unpause_one(pipeline: str, name: str) -> PausedOut:
        """Unpause one schedule."""
        return _pause(pipeline, name, False)

    @r.post(
        "/{pipeline}/triggers/{name}/pause", response_model=PausedOut, summary="Pause a trigger"
    )
    def pause_trigger(pipeline: str, name: str) -> PausedOut:
        """Pause a trigger: its events start no runs until it is unpaused."""
        ctx.automation.set_trigger_paused(pipeline, name, True)
        return PausedOut(pipeline=pipeline, name=name, paused=True)

    @r.post(
        "/{pipeline}/triggers/{name}/unpause",
        response_model=PausedOut,
        summary="Unpause a trigger",
    )
    def unpause_trigger(pipeline: str, name: str) -> PausedOut:
        """Unpause a trigger."""
        ctx.automation.set_trigger_paused(pipeline, name, False)
        return PausedOut(pipeline=pipeline, name=name, paused=False)

    return r
