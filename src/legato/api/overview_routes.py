"""``GET /api/v1/overview``: the overview page's figures as JSON (``runs.read``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from legato.api.http_errors import ERRORS
from legato.api.schemas import Record
from legato.services.door import Door

if TYPE_CHECKING:
    from legato.services.overview_service import HourBar, OverviewFigures


class HourOut(BaseModel):
    start: datetime  # the UTC hour's first instant
    total: int
    states: dict[str, int]  # runs per state; states without runs left out

    @classmethod
    def of(cls, bar: HourBar) -> HourOut:
        return cls(start=bar.start, total=bar.total, states=dict(bar.counts))


class SpeedOut(Record):
    pipeline: str
    runs: int  # succeeded runs measured
    p50: float  # seconds
    p95: float
    longest: float


class FailuresOut(Record):
    pipeline: str
    runs: int
    finished: int
    failed: int
    failure_rate: float  # failed / finished


class DayOut(Record):
    day: date
    runs: int
    p50: float | None  # seconds; None on a day without succeeded runs
    p95: float | None


class TrendOut(Record):
    pipeline: str
    days: list[DayOut]  # oldest first, one per UTC day


class OverviewOut(BaseModel):
    now: datetime
    last_day: list[HourOut]  # 24 UTC hours, oldest first, the current one last
    last_week: list[HourOut]  # 168 UTC hours
    slowest: list[SpeedOut]
    failing: list[FailuresOut]
    trends: list[TrendOut]
    durations_complete: bool  # False: some day's durations come from its newest runs only

    @classmethod
    def of(cls, o: OverviewFigures) -> OverviewOut:
        return cls(
            now=o.now,
            last_day=[HourOut.of(b) for b in o.last_day],
            last_week=[HourOut.of(b) for b in o.last_week],
            slowest=[SpeedOut.of(s) for s in o.slowest],
            failing=[FailuresOut.of(f) for f in o.failing],
            trends=[TrendOut.of(t) for t in o.trends],
            durations_complete=o.durations_complete,
        )


def router(ctx: Door) -> APIRouter:
    """The /overview route over ``ctx``."""
    r = APIRouter(responses=ERRORS, tags=["overview"])

    @r.get("/overview", response_model=OverviewOut, summary="Runs over the last day and week")
    def overview() -> OverviewOut:
        """Runs per UTC hour by state (last 24 and 168 hours, by creation time, in their
        state now) and the most failing pipelines over those 168 hours; the slowest
        pipelines (p95 of succeeded runs) and each pipeline's p50/p95 duration per UTC day
        over the last seven UTC days."""
        return OverviewOut.of(ctx.overview.figures())

    return r
