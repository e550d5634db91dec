"""Statistics of runs over a time window, aggregated in SQL: what the overview page draws.

Every query here selects runs by ``created_at`` (indexed, ``ix_runs_created_at``) within
``[since, until)`` and groups in the database, so a read returns a few hundred rows however
many runs the window holds. Runs count where they were created; their state is the one they
have now.

Percentiles (``durations``) are exact and the same on both backends: PostgreSQL has
``percentile_cont`` but SQLite has no percentile function, while both have window functions.
Each group's durations are numbered in order (``row_number() OVER (PARTITION BY ...)``) and only
the rows next to each wanted rank come back; the value between them is interpolated as
``percentile_cont`` does (the "linear" method of ``numpy.percentile``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, and_, case, func, literal, or_, select

from legato.domain.states import RunState
from legato.store import dialect
from legato.store.database import Part, of_pipelines
from legato.store.schema import runs

_r = runs.c

#: The percentiles ``durations`` gives, in percent (integers: the ranks are integer arithmetic,
#: which SQLite and PostgreSQL do alike, unlike rounding a float to an integer).
PERCENTS = (50, 95)


@dataclass(frozen=True, slots=True)
class HourCount:
    """How many runs created in one UTC hour (``hour``, ``YYYY-MM-DD HH``) are in ``state``."""

    hour: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class FailureCount:
    """A pipeline's runs created in the window: all of them, those finished, those failed."""

    pipeline: str
    runs: int
    finished: int
    failed: int


@dataclass(frozen=True, slots=True)
class Durations:
    """How long a pipeline's succeeded runs took (seconds, start to finish), in one UTC day
    (``day``, ``YYYY-MM-DD``) or over the whole window (``day`` None)."""

    pipeline: str
    day: str | None
    count: int
    percentiles: dict[int, float]  # percent -> seconds
    longest: float


class StatsStore(Part):
    """Counts and durations of runs per hour, day and pipeline."""

    def runs_per_hour(
        self, since: datetime, until: datetime, *, pipelines: Collection[str] | None = None
    ) -> list[HourCount]:
        """Runs created in ``[since, until)`` counted by UTC hour and state, oldest first."""
        hour = dialect.hour_text(_r.created_at, self._backend).label("hour")
        stmt = (
            select(hour, _r.state, func.count())
            .where(_r.created_at >= since, _r.created_at < until)
            .group_by(hour, _r.state)
            .order_by(hour, _r.state)
        )
        stmt = of_pipelines(stmt, _r.pipeline, pipelines)
        with self._engine.connect() as conn:
            return [HourCount(str(h), str(s), int(n)) for h, s, n in conn.execute(stmt)]

    def failures(
        self, since: datetime, until: datetime, *, pipelines: Collection[str] | None = None
    ) -> list[FailureCount]:
        """Per pipeline with runs created in ``[since, until)``: how many, finished, failed;
        by name."""
        finished = [s.value for s in RunState if s.finished]
        stmt = (
            select(
                _r.pipeline,
                func.count(),
                func.sum(case((_r.state.in_(finished), 1), else_=0)),
                func.sum(case((_r.state == RunState.FAILED.value, 1), else_=0)),
            )
            .where(_r.created_at >= since, _r.created_at < until)
            .group_by(_r.pipeline)
            .order_by(_r.pipeline)
        )
        stmt = of_pipelines(stmt, _r.pipeline, pipelines)
        with self._engine.connect() as conn:
            return [
                FailureCount(str(p), int(n), int(done or 0), int(bad or 0))
                for p, n, done, bad in conn.execute(stmt)
            ]

    def durations(
        self,
        since: datetime,
        until: datetime,
        *,
        by_day: bool,
        pipelines: Collection[str] | None = None,
        percents: Sequence[int] = PERCENTS,
    ) -> list[Durations]:
        """How long succeeded runs created in ``[since, until)`` took: per pipeline, and per
        UTC day of creation when ``by_day``; the exact ``percents`` (0-100) and the longest.

        Only succeeded runs count: a failed run stops at its failing task and a canceled one
        when someone cancels it, so their times say little about how long the work takes.
        """
        if not all(0 <= p <= 100 for p in percents):
            raise ValueError(f"percentiles must be between 0 and 100: {list(percents)}")
        seconds = dialect.seconds_between(_r.started_at, _r.finished_at, self._backend)
        keys = [_r.pipeline.label("pipeline")]
        if by_day:
            keys.append(dialect.day_text(_r.created_at, self._backend).label("day"))
        else:
            keys.append(literal(None).label("day"))
        groups = [k for k in keys if k.name == "pipeline" or by_day]
        numbered = select(
            *keys,
            seconds.label("seconds"),
            func.row_number().over(partition_by=groups, order_by=seconds).label("rank"),
            func.count().over(partition_by=groups).label("n"),
        ).where(
            _r.created_at >= since,
            _r.created_at < until,
            _r.state == RunState.SUCCEEDED.value,
            _r.started_at.is_not(None),
            _r.finished_at.is_not(None),
        )
        inner = of_pipelines(numbered, _r.pipeline, pipelines).subquery()
        c = inner.c
        # For p percent, the value sits at 1-based rank 1 + (n - 1) * p / 100: keep the
        # ranks on either side of it (integer division is the floor here), and the last.
        wanted = [c.rank == c.n]
        for p in percents:
            low = (c.n - 1) * literal(p, Integer) // literal(100, Integer) + 1
            wanted.append(and_(c.rank >= low, c.rank <= low + 1))
        stmt = (
            select(c.pipeline, c.day, c.n, c.rank, c.seconds)
            .where(or_(*wanted))
            .order_by(c.pipeline, c.day, c.rank)
        )
        picked: dict[tuple[str, str | None], dict[int, float]] = {}
        sizes: dict[tuple[str, str | None], int] = {}
        with self._engine.connect() as conn:
            for pipeline, day, n, rank, secs in conn.execute(stmt):
                key = (str(pipeline), None if day is None else str(day))
                picked.setdefault(key, {})[int(rank)] = max(float(secs), 0.0)
                sizes[key] = int(n)
        out = []
        for key, ranked in picked.items():
            n = sizes[key]
            values = {p: _interpolate(ranked, n, p) for p in percents}
            out.append(Durations(key[0], key[1], n, values, ranked[n]))
        return out


def _interpolate(ranked: dict[int, float], n: int, percent: int) -> float:
    """The ``percent`` percentile of ``n`` sorted values of which ``ranked`` holds (1-based)
    the ones around it: linear between the two nearest ranks, as ``percentile_cont``."""
    whole, part = divmod((n - 1) * percent, 100)
    low = ranked[whole + 1]
    if part == 0:
        return low
    return low + (ranked[whole + 2] - low) * part / 100


__all__ = ["Durations", "FailureCount", "HourCount", "StatsStore"]
