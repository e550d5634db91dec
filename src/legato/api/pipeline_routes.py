"""Routes of pipelines: list, detail, partitions, launching runs, pausing schedules and triggers."""

from __future__ import annotations

from fastapi import APIRouter

from legato.api.http_errors import ERRORS
from legato.api.schemas import (
    LaunchIn,
    PartitionOut,
    PausedOut,
    PipelineDetailOut,
    PipelineOut,
    RunOut,
)
from legato.services.door import Door


def router(ctx: Door) -> APIRouter:
    """The /pipelines routes over ``ctx``."""
    r = APIRouter(prefix="/pipelines", tags=["pipelines"], responses=ERRORS)

    @r.get("", response_model=list[PipelineOut], summary="List pipelines")
    def list_pipelines() -> list[PipelineOut]:
        """Every pipeline with its last runs, next scheduled run, schedules and triggers."""
        return [PipelineOut.of(p) for p in ctx.catalog.pipelines()]

    @r.get("/{pipeline}", response_model=PipelineDetailOut, summary="One pipeline")
    def get_pipeline(pipeline: str) -> PipelineDetailOut:
        """The DAG, params and their JSON schema, partitions and their states, schedules,
        triggers."""
        return PipelineDetailOut.of_detail(ctx.catalog.pipeline(pipeline))

    @r.get("/{pipeline}/partitions", response_model=list[PartitionOut], summary="Partition states")
    def partitions(pipeline: str) -> list[PartitionOut]:
        """Each partition that exists now, oldest first, with the state of its newest run."""
        return [PartitionOut.of(p) for p in ctx.automation.partitions(pipeline)]

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
