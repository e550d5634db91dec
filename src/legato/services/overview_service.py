"""The overview: how runs went over the last day and week, for the overview page and the API.

Runs per UTC hour by state, the slowest and the most failing pipelines, and each pipeline's
p50/p95 duration per UTC day. The store aggregates (``legato.store.stats_store``); this
service chooses the windows from ``now``, fills the hours and days without runs, ranks, and
keeps to the pipelines the actor sees. Runs count in the hour they were created, with the
state they have now; durations are those of succeeded runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from legato.domain.states import RunState
from legato.services.actor import Actor
from legato.services.gate import Service, action

if TYPE_CHECKING:
    from legato.services.workspace import Workspace
    from legato.store.stats_store import Durations, HourCount

HOUR = timedelta(hours=1)
DAY_HOURS = 24
WEEK_HOURS = 7 * 24
TREND_DAYS = 7
#: Bottom to top in a stacked bar: finished states first, so the live ones sit on top.
STACK_ORDER = (
    RunState.SUCCEEDED.value,
    RunState.FAILED.value,
    RunState.CANCELED.value,
    RunState.RUNNING.value,
    RunState.QUEUED.value,
)
_STATES = frozenset(s.value for s in RunState)
#: Rows of the slowest and most-failing tables; pipelines with a duration trend at most.
TOP = 10
MAX_TRENDS = 50


@dataclass(frozen=True)
class HourBar:
    """Runs created in the UTC hour starting at ``start``, per state (in ``STACK_ORDER``,
    states without runs left out)."""

    start: datetime
    counts: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class PipelineSpeed:
    """How long a pipeline's succeeded runs took over the window, in seconds."""

    pipeline: str
    runs: int
    p50: float
    p95: float
    longest: float


@dataclass(frozen=True)
class PipelineFailures:
    """A pipeline's runs created in the window: all, finished, failed."""

    pipeline: str
    runs: int
    finished: int
    failed: int

    @property
    def failure_rate(self) -> float:
        """Failed runs among the finished ones (0 when none finished)."""
        return self.failed / self.finished if self.finished else 0.0


@dataclass(frozen=True)
class DayDurations:
    """A pipeline's succeeded runs created on one UTC day: how many, p50 and p95 seconds
    (None on a day without any)."""

    day: date
    runs: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class DurationTrend:
    """A pipeline's durations per UTC day, oldest day first, one entry per day."""

    pipeline: str
    days: tuple[DayDurations, ...]


@dataclass(frozen=True)
class OverviewFigures:
    """Everything the overview shows, as of ``now``.

    ``last_day`` and ``last_week`` are the 24 and 168 UTC hours ending with the current
    one, and ``failing`` covers the week's hours; ``slowest`` and ``trends`` cover the last
    seven UTC days, today included.
    """

    now: datetime
    last_day: tuple[HourBar, ...]
    last_week: tuple[HourBar, ...]
    slowest: tuple[PipelineSpeed, ...]
    failing: tuple[PipelineFailures, ...]
    trends: tuple[DurationTrend, ...]
    durations_complete: bool  # False: some day's durations are its newest runs only


class Overview(Service):
    """The overview's figures (read with ``runs.read``), for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    @action("runs.read")
    def figures(self, now: datetime | None = None) -> OverviewFigures:
        """The overview as of ``now`` (the workspace's clock when None)."""
        now = (now or self.ws.clock()).astimezone(UTC)
        seen = self._sight().pipelines()
        stats = self.ws.store.stats
        end = now.replace(minute=0, second=0, microsecond=0) + HOUR
        week_start = end - WEEK_HOURS * HOUR
        counts = stats.runs_per_hour(week_start, end, pipelines=seen)
        hours = _hour_bars(counts, week_start)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        first_day = today - timedelta(days=TREND_DAYS - 1)
        durations = stats.durations(first_day, today + timedelta(days=1), pipelines=seen)
        speeds = [
            PipelineSpeed(d.pipeline, d.count, d.percentiles[50], d.percentiles[95], d.longest)
            for d in durations.overall
        ]
        speeds.sort(key=lambda s: (-s.p95, -s.p50, s.pipeline))
        failing = [f for f in _failures(counts) if f.failed]
        failing.sort(key=lambda f: (-f.failed, -f.failure_rate, f.pipeline))
        return OverviewFigures(
            now=now,
            last_day=tuple(hours[-DAY_HOURS:]),
            last_week=tuple(hours),
            slowest=tuple(speeds[:TOP]),
            failing=tuple(failing[:TOP]),
            trends=_trends(durations.by_day, first_day.date()),
            durations_complete=durations.complete,
        )


def _hour_bars(counts: list[HourCount], start: datetime) -> list[HourBar]:
    by_hour: dict[str, dict[str, int]] = {}
    for c in counts:
        states = by_hour.setdefault(c.hour, {})
        states[c.state] = states.get(c.state, 0) + c.count
    bars = []
    for i in range(WEEK_HOURS):
        at = start + i * HOUR
        found = by_hour.get(at.strftime("%Y-%m-%d %H"), {})
        # A state the stack does not know (none today) still counts, on top.
        order = [*STACK_ORDER, *sorted(set(found) - set(STACK_ORDER))]
        bars.append(HourBar(at, tuple((s, found[s]) for s in order if found.get(s))))
    return bars


def _failures(counts: list[HourCount]) -> list[PipelineFailures]:
    """Per pipeline: its runs, those finished and those failed."""
    totals: dict[str, list[int]] = {}
    for c in counts:
        runs, finished, failed = totals.setdefault(c.pipeline, [0, 0, 0])
        done = RunState(c.state).finished if c.state in _STATES else False
        totals[c.pipeline] = [
            runs + c.count,
            finished + (c.count if done else 0),
            failed + (c.count if c.state == RunState.FAILED.value else 0),
        ]
    return [PipelineFailures(p, *t) for p, t in sorted(totals.items())]


def _trends(per_day: Sequence[Durations], first_day: date) -> tuple[DurationTrend, ...]:
    by_pipeline: dict[str, dict[str, Durations]] = {}
    for d in per_day:
        by_pipeline.setdefault(d.pipeline, {})[d.day or ""] = d
    out = []
    for name in sorted(by_pipeline)[:MAX_TRENDS]:
        days = []
        for i in range(TREND_DAYS):
            day = first_day + timedelta(days=i)
            found = by_pipeline[name].get(day.isoformat())
            if found is None:
                days.append(DayDurations(day, 0, None, None))
            else:
                p = found.percentiles
                days.append(DayDurations(day, found.count, p[50], p[95]))
        out.append(DurationTrend(name, tuple(days)))
    return tuple(out)


__all__ = [
    "DayDurations",
    "DurationTrend",
    "HourBar",
    "Overview",
    "OverviewFigures",
    "PipelineFailures",
    "PipelineSpeed",
]
