"""Statistics of runs over a time window, aggregated in SQL: what the overview page draws.

Every query here selects runs by ``created_at`` (indexed, ``ix_runs_created_at``) within
``[since, until)``, so its cost follows the runs in the window, not the runs in the store.
Runs count where they were created; their state is the one they have now.

Duration percentiles are exact, by the same definition on both backends (linear between the
closest ranks, as PostgreSQL's ``percentile_cont``), but not computed alike:

- PostgreSQL computes them in SQL with ``percentile_cont``, over every succeeded run.
- SQLite has no percentile function. Numbering each group's durations with window functions
  gives the same figures but costs about 1 s per 100,000 runs in the window (measured:
  bench/RESULTS.md), so the store reads the durations and computes the percentiles in Python
  over a bounded sample instead: of each UTC day, the newest ``SAMPLE_PER_DAY`` succeeded
  runs, one index range scan per day that stops at its limit. Up to that many a day (about
  200 an hour) the figures are exact; beyond it they describe the day's newest runs, and
  ``DurationStats.complete`` says so.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_

from legato.domain.states import RunState
from legato.store import dialect
from legato.store.database import Part, of_pipelines
from legato.store.schema import UTCDateTime, runs

_r = runs.c

#: The percentiles ``durations`` gives, in percent.
PERCENTS = (50, 95)
#: Succeeded runs of one UTC day whose durations SQLite reads at most (the newest).
SAMPLE_PER_DAY = 5000


@dataclass(frozen=True, slots=True)
class HourCount:
    """How many runs of ``pipeline`` created in one UTC hour (``hour``, ``YYYY-MM-DD HH``)
    are in ``state``."""

    hour: str
    pipeline: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class Durations:
    """How long a pipeline's succeeded runs took (seconds, start to finish), in one UTC day
    (``day``, ``YYYY-MM-DD``) or over the whole window (``day`` None)."""

    pipeline: str
    day: str | None
    count: int
    percentiles: dict[int, float]  # percent -> seconds
    longest: float


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Durations per pipeline and day, and per pipeline over the whole window; ``complete``
    is False when some day held more succeeded runs than its sample (SQLite)."""

    by_day: tuple[Durations, ...]
    overall: tuple[Durations, ...]
    complete: bool


class StatsStore(Part):
    """Counts and durations of runs per hour, day and pipeline."""

    def runs_per_hour(
        self, since: datetime, until: datetime, *, pipelines: Collection[str] | None = None
    ) -> list[HourCount]:
        """Runs created in ``[since, until)`` counted by UTC hour, pipeline and state, oldest
        hour first. One pass over the window serves both the hourly bars and the failures
        per pipeline."""
        if self._backend == "sqlite":
            return self._hour_by_hour(since, until, pipelines)
        # date_trunc, not to_char: a timestamp sorts and groups at half the cost of a text.
        hour = func.date_trunc("hour", _r.created_at).label("hour")
        stmt = (
            select(hour, _r.pipeline, _r.state, func.count())
            .where(_r.created_at >= since, _r.created_at < until)
            .group_by(hour, _r.pipeline, _r.state)
            .order_by(hour, _r.pipeline, _r.state)
        )
        stmt = of_pipelines(stmt, _r.pipeline, pipelines)
        with self._engine.connect() as conn:
            return [
                HourCount(f"{h:%Y-%m-%d %H}", str(p), str(s), int(n))
                for h, p, s, n in conn.execute(stmt)
            ]

    def _hour_by_hour(
        self, since: datetime, until: datetime, pipelines: Collection[str] | None
    ) -> list[HourCount]:
        # SQLite groups by sorting every row into one temporary B-tree; an hour at a time
        # the trees stay small, which halves the time with 100,000 runs in a week
        # (bench/RESULTS.md). In-process queries cost no round trips.
        # One statement, compiled once and run per hour: building 168 would cost more
        # than running them.
        stmt = (
            select(_r.pipeline, _r.state, func.count())
            .where(
                _r.created_at >= bindparam("start", type_=UTCDateTime),
                _r.created_at < bindparam("end", type_=UTCDateTime),
            )
            .group_by(_r.pipeline, _r.state)
            .order_by(_r.pipeline, _r.state)
        )
        stmt = of_pipelines(stmt, _r.pipeline, pipelines)
        out = []
        with self._engine.connect() as conn:
            for start, end in _cut(since, until, timedelta(hours=1)):
                hour = start.strftime("%Y-%m-%d %H")
                rows = conn.execute(stmt, {"start": start, "end": end})
                out += [HourCount(hour, str(p), str(s), int(n)) for p, s, n in rows]
        return out

    def durations(
        self,
        since: datetime,
        until: datetime,
        *,
        pipelines: Collection[str] | None = None,
        percents: Sequence[int] = PERCENTS,
    ) -> DurationStats:
        """How long succeeded runs created in ``[since, until)`` took: per pipeline and UTC
        day of creation, and per pipeline over the window; the ``percents`` (0-100) and the
        longest (see the module docstring for how).

        Only succeeded runs count: a failed run stops at its failing task and a canceled one
        when someone cancels it, so their times say little about how long the work takes.
        """
        if not all(0 <= p <= 100 for p in percents):
            raise ValueError(f"percentiles must be between 0 and 100: {list(percents)}")
        if dialect.has_percentile_cont(self._backend):
            return self._percentile_cont(since, until, pipelines, percents)
        return self._sampled(since, until, pipelines, percents)

    def _succeeded(self, since: datetime, until: datetime) -> list[Any]:
        # The index on state would walk every succeeded run ever made to find the window's.
        state = dialect.unindexed(_r.state, self._backend)
        return [
            _r.created_at >= since,
            _r.created_at < until,
            state == RunState.SUCCEEDED.value,
            _r.started_at.is_not(None),
            _r.finished_at.is_not(None),
        ]

    def _percentile_cont(
        self,
        since: datetime,
        until: datetime,
        pipelines: Collection[str] | None,
        percents: Sequence[int],
    ) -> DurationStats:
        seconds = dialect.seconds_between(_r.started_at, _r.finished_at, self._backend)
        day = func.date_trunc("day", _r.created_at)
        # Per pipeline and day, and per pipeline, in one pass: the second grouping set's
        # rows have no day.
        sets = func.grouping_sets(tuple_(_r.pipeline, day), tuple_(_r.pipeline))
        stmt = select(
            _r.pipeline,
            day,
            func.count(),
            func.max(seconds),
            *(func.percentile_cont(p / 100).within_group(seconds) for p in percents),
        ).where(*self._succeeded(since, until))
        stmt = of_pipelines(stmt.group_by(sets), _r.pipeline, pipelines)
        by_day: list[Durations] = []
        overall: list[Durations] = []
        with self._engine.connect() as conn:
            for pipeline, at, n, longest, *values in conn.execute(stmt):
                figures = {p: max(float(v), 0.0) for p, v in zip(percents, values, strict=True)}
                when = None if at is None else f"{at:%Y-%m-%d}"
                found = Durations(str(pipeline), when, int(n), figures, max(float(longest), 0.0))
                (overall if at is None else by_day).append(found)
        return DurationStats(tuple(by_day), tuple(overall), True)

    def _sampled(
        self,
        since: datetime,
        until: datetime,
        pipelines: Collection[str] | None,
        percents: Sequence[int],
    ) -> DurationStats:
        seconds = dialect.seconds_between(_r.started_at, _r.finished_at, self._backend)
        values: dict[tuple[str, str], list[float]] = {}
        complete = True
        with self._engine.connect() as conn:
            for start, end in _cut(since, until, timedelta(days=1)):
                stmt = (
                    select(_r.pipeline, seconds)
                    .where(*self._succeeded(start, end))
                    .order_by(_r.created_at.desc())
                    .limit(SAMPLE_PER_DAY + 1)  # one more tells whether the day had more
                )
                rows = conn.execute(of_pipelines(stmt, _r.pipeline, pipelines)).all()
                complete = complete and len(rows) <= SAMPLE_PER_DAY
                rows = rows[:SAMPLE_PER_DAY]
                day = start.strftime("%Y-%m-%d")
                for pipeline, secs in rows:
                    values.setdefault((str(pipeline), day), []).append(max(float(secs), 0.0))
        by_day = [_figures(p, d, v, percents) for (p, d), v in sorted(values.items())]
        per_pipeline: dict[str, list[float]] = {}
        for (pipeline, _), v in values.items():
            per_pipeline.setdefault(pipeline, []).extend(v)
        overall = [_figures(p, None, v, percents) for p, v in sorted(per_pipeline.items())]
        return DurationStats(tuple(by_day), tuple(overall), complete)


def _cut(since: datetime, until: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """``[since, until)`` cut at each UTC hour or midnight (``size``: an hour or a day)."""
    out = []
    start = since.astimezone(UTC)
    while start < until:
        if size == timedelta(days=1):
            edge = start.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            edge = start.replace(minute=0, second=0, microsecond=0)
        end = min(edge + size, until)
        out.append((start, end))
        start = end
    return out


def _figures(
    pipeline: str, day: str | None, values: list[float], percents: Sequence[int]
) -> Durations:
    ordered = sorted(values)
    figures = {p: percentile(ordered, p) for p in percents}
    return Durations(pipeline, day, len(ordered), figures, ordered[-1])


def percentile(ordered: Sequence[float], percent: int) -> float:
    """The ``percent`` percentile of the sorted values ``ordered`` (not empty): linear between
    the two closest ranks, as ``percentile_cont``."""
    whole, part = divmod((len(ordered) - 1) * percent, 100)
    low = ordered[whole]
    if part == 0:
        return low
    return low + (ordered[whole + 1] - low) * part / 100


__all__ = ["DurationStats", "Durations", "HourCount", "StatsStore", "percentile"]
