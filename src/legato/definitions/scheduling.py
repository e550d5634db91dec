"""Schedules: cron expressions and fixed intervals, evaluated in a time zone.

Pure and clock-free: every time is passed in, every tick comes back as an aware UTC datetime.

Daylight saving time follows Debian cron (implemented by cronsim, imported lazily to keep
``import legato`` light). A job at a fixed local time runs once every day: a time skipped by a
spring-forward gap runs at the first instant after the gap (02:30 becomes 03:00), a time that
occurs twice on a fall-back night runs at its first occurrence only. Jobs whose minute or hour
field starts with "*" (``0 * * * *``, ``*/15 * * * *``) run on real elapsed time instead: once
per real hour, so 23 ticks on a spring-forward day and 25 on a fall-back day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from legato.definitions.partitioning import is_skipped, require_aware, wall_to_instant, zone_for

Catchup = Literal["all", "latest", "none"]

_CATCHUPS = ("all", "latest", "none")
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = {  # name -> allowed numeric range, in cron order
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 7),
}
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_INTERVAL_PART = re.compile(r"(\d+)([wdhms])")
_DAY = timedelta(days=1)
_WEEK = timedelta(weeks=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_WALL = datetime(1970, 1, 1)
_EPOCH_MONDAY_WALL = datetime(1970, 1, 5)
_LIMIT = 10_000


class ScheduleError(ValueError):
    """A schedule is defined wrongly, or was given an invalid time."""


def _cron_fields(expression: str) -> str:
    """The five cron fields of an expression or alias; ScheduleError if it is invalid."""
    if not isinstance(expression, str):
        raise ScheduleError(f"cron expression must be a str, got {type(expression).__name__}")
    bad = f"invalid cron expression {expression!r}"
    parts = expression.split()
    if len(parts) == 1 and parts[0].startswith("@"):
        if parts[0].lower() not in _ALIASES:
            raise ScheduleError(f"{bad}: unknown alias (expected one of {', '.join(_ALIASES)})")
        return _ALIASES[parts[0].lower()]
    if len(parts) != 5:
        extra = "; seconds and year fields are not supported" if len(parts) > 5 else ""
        raise ScheduleError(
            f"{bad}: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}{extra}"
        )
    from cronsim import CronSim, CronSimError

    try:
        CronSim(" ".join(parts), _EPOCH)
    except CronSimError as exc:
        raise ScheduleError(f"{bad}: {_explain(parts, str(exc))}") from None
    return " ".join(parts)


def _explain(parts: list[str], message: str) -> str:
    """A precise reason from cronsim's terse "Bad <field>" message."""
    name = message.removeprefix("Bad ").strip()
    if name not in _FIELDS:
        return message
    text = parts[list(_FIELDS).index(name)]
    lo, hi = _FIELDS[name]
    numbers = [
        piece
        for term in text.split(",")
        for piece in term.split("/")[0].split("-")
        if piece.isdigit()
    ]
    for number in numbers:
        if not lo <= int(number) <= hi:
            return f"{name} {int(number)} is out of range ({lo}-{hi})"
    if name == "day-of-month" and numbers and text.replace(",", "").replace("-", "").isdigit():
        return f"day-of-month {text!r} never occurs in month {parts[3]!r}"
    return f"bad {name} field {text!r}"


def _parse_interval(value: str | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        step = value
    elif isinstance(value, str):
        text = value.strip().lower().removeprefix("every").replace(" ", "")
        pos, seconds = 0, 0
        for match in _INTERVAL_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += int(match[1]) * _UNIT_SECONDS[match[2]]
            pos = match.end()
        if not text or pos != len(text):
            raise ScheduleError(
                f"invalid interval {value!r} (expected e.g. 30s, 15m, 1h, 1h30m, 1d or 2w)"
            )
        step = timedelta(seconds=seconds)
    else:
        raise ScheduleError(f"interval must be a str or timedelta, got {type(value).__name__}")
    shown = repr(value) if isinstance(value, str) else f"of {step.total_seconds():g} seconds"
    if step <= timedelta(0):
        raise ScheduleError(f"interval {shown} must be positive")
    if step % timedelta(seconds=1):
        raise ScheduleError(f"interval {shown} must be a whole number of seconds")
    return step


def _format_interval(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    if seconds % _UNIT_SECONDS["w"] == 0:
        return f"{seconds // _UNIT_SECONDS['w']}w"
    out = ""
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        out += f"{count}{unit}" if count else ""
    return out


@dataclass(frozen=True)
class Schedule:
    """When a pipeline runs: a cron expression or a fixed interval, in a time zone.

    ``catchup`` decides what ``due()`` returns after missed ticks: "all" of them, only the
    "latest", or "none" (only ticks at most ``grace`` seconds old). Build one with ``cron()``,
    ``every()`` or ``parse_schedule()``; ``interval`` and ``start`` are for interval schedules.
    ``tz_given`` is False when the zone was left out, so that a pipeline can put its own
    (``in_default_zone``); ``wall_start`` keeps a naive ``start`` as given, for the same reason.
    """

    kind: Literal["cron", "interval"]
    expression: str
    tz: str = "UTC"
    catchup: Catchup = "latest"
    name: str | None = None
    interval: timedelta | None = None
    start: datetime | None = None
    tz_given: bool = field(default=True, repr=False, compare=False)
    wall_start: datetime | None = field(default=None, repr=False, compare=False)
    _cron: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        zone_for(self.tz, ScheduleError)
        if self.catchup not in _CATCHUPS:
            raise ScheduleError(f"catchup {self.catchup!r} must be one of 'all', 'latest', 'none'")
        if self.name is not None and not isinstance(self.name, str):
            raise ScheduleError(f"name must be a str or None, got {type(self.name).__name__}")
        if self.kind == "cron":
            object.__setattr__(self, "_cron", _cron_fields(self.expression))
            if self.interval is not None or self.start is not None:
                raise ScheduleError("interval and start are only for interval schedules")
        elif self.kind == "interval":
            step = _parse_interval(self.expression if self.interval is None else self.interval)
            object.__setattr__(self, "interval", step)
            if self.start is not None:
                require_aware(self.start, "start", ScheduleError)
        else:
            raise ScheduleError(f"kind {self.kind!r} must be 'cron' or 'interval'")

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t``, in UTC."""
        require_aware(t, "t", ScheduleError)
        for tick in self._iter(t):
            return tick
        raise ScheduleError(f"schedule {self.expression!r} has no tick after {t.isoformat()}")

    def ticks(self, after: datetime, until: datetime, *, limit: int = _LIMIT) -> list[datetime]:
        """Every tick with ``after < tick <= until``, oldest first, in UTC.

        At most ``limit`` ticks (the oldest ones) are returned, so a long window on a frequent
        schedule stays bounded; call again from the last tick returned to get the rest.
        """
        require_aware(after, "after", ScheduleError)
        require_aware(until, "until", ScheduleError)
        # Compare in UTC: datetimes sharing a tzinfo compare by wall time, ignoring DST.
        until = until.astimezone(UTC)
        if limit < 1:
            raise ScheduleError(f"limit must be at least 1, got {limit}")
        out: list[datetime] = []
        for tick in self._iter(after):
            if tick > until or len(out) >= limit:
                break
            out.append(tick)
        return out

    def due(
        self, cursor: datetime, now: datetime, *, grace: float = 60.0, limit: int = _LIMIT
    ) -> list[datetime]:
        """The ticks to run at ``now``, given that every tick up to ``cursor`` was handled.

        "all": every tick in (cursor, now], oldest first, at most ``limit`` of them; "latest":
        only the last of those (or none); "none": only ticks at most ``grace`` seconds before
        ``now``, so ticks missed while nothing was running are skipped.
        """
        require_aware(cursor, "cursor", ScheduleError)
        require_aware(now, "now", ScheduleError)
        if grace < 0:
            raise ScheduleError(f"grace must not be negative, got {grace}")
        cursor, now = cursor.astimezone(UTC), now.astimezone(UTC)
        if self.catchup == "all":
            return self.ticks(cursor, now, limit=limit)
        if self.catchup == "none":
            oldest = now - timedelta(seconds=grace)  # inclusive: a tick exactly `grace` old runs
            return self.ticks(max(cursor, oldest - timedelta.resolution), now, limit=limit)
        # Look back in growing windows so a long outage does not enumerate every missed tick.
        span = timedelta(hours=1)
        while True:
            lo = max(cursor, now - span)
            found = None
            for tick in self._iter(lo):
                if tick > now:
                    break
                found = tick
            if found is not None or lo == cursor:
                return [] if found is None else [found]
            span *= 4

    def in_default_zone(self, tz: str) -> Schedule:
        """This schedule evaluated in ``tz``, unless it was given a zone of its own."""
        if self.tz_given or tz == self.tz:
            return self
        if self.kind == "cron":
            return replace(self, tz=tz, tz_given=True)
        assert self.interval is not None
        start = self.wall_start if self.wall_start is not None else self.start
        return every(self.interval, start=start, tz=tz, catchup=self.catchup, name=self.name)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for snapshots and the UI."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "expression": self.expression,
            "tz": self.tz,
            "catchup": self.catchup,
            "name": self.name,
        }
        if self.kind == "cron":
            out["cron"] = self._cron
        else:
            assert self.interval is not None
            out["interval_seconds"] = int(self.interval.total_seconds())
            out["start"] = None if self.start is None else self.start.isoformat()
        return out

    def _iter(self, after: datetime) -> Iterator[datetime]:
        """Ticks strictly after ``after``, in UTC, for as long as the caller wants them."""
        after = after.astimezone(UTC)
        if self.kind == "cron":
            yield from self._cron_ticks(after)
        elif self.interval is not None and self.interval % _DAY:
            yield from self._elapsed_ticks(after, self.interval)
        else:
            assert self.interval is not None
            yield from self._calendar_ticks(after, self.interval.days)

    def _cron_ticks(self, after: datetime) -> Iterator[datetime]:
        from cronsim import CronSim

        # cronsim takes its fast path for datetime.UTC only, not for ZoneInfo("UTC").
        zone = UTC if self.tz == "UTC" else zone_for(self.tz, ScheduleError)
        # cronsim walks fixed-time jobs in local wall time, so after a point in a repeated
        # hour it can return that hour's first occurrence, which is in the past: skip it.
        last = after
        for tick in CronSim(self._cron, after.astimezone(zone)):
            at = tick.astimezone(UTC)
            if at > last:
                yield at
                last = at

    def _elapsed_ticks(self, after: datetime, step: timedelta) -> Iterator[datetime]:
        anchor = _EPOCH if self.start is None else self.start.astimezone(UTC)
        k = 0 if after < anchor else (after - anchor) // step + 1
        while True:
            yield anchor + k * step
            k += 1

    def _calendar_ticks(self, after: datetime, days: int) -> Iterator[datetime]:
        zone = zone_for(self.tz, ScheduleError)
        if self.start is not None:
            wall = self.start.astimezone(zone).replace(tzinfo=None)
        else:
            wall = _EPOCH_MONDAY_WALL if days % 7 == 0 else _EPOCH_WALL
        # Ticks are the same wall time every `days` local days. Start one step before the
        # step holding `after`: a tick on an earlier local date is never later than `after`.
        elapsed = (after.astimezone(zone).date() - wall.date()).days
        k = max(0, elapsed // days - 1)
        while True:
            if k == 0 and self.start is not None:
                # The start itself, even if it is the second occurrence of a repeated time.
                tick = self.start.astimezone(UTC)
            else:
                tick = wall_to_instant(wall + k * days * _DAY, zone).astimezone(UTC)
            if tick > after:
                yield tick
            k += 1


def cron(
    expression: str,
    *,
    tz: str | None = None,
    catchup: Catchup = "latest",
    name: str | None = None,
) -> Schedule:
    """A cron schedule: five fields (minute hour day-of-month month day-of-week) or an alias
    (@yearly @annually @monthly @weekly @daily @midnight @hourly), evaluated in ``tz``.

    Without ``tz`` it runs in its pipeline's zone (the pipeline's ``tz=``, else its
    partitions' zone, else UTC); on its own, in UTC.
    """
    zone = "UTC" if tz is None else tz
    return Schedule(
        "cron", expression, tz=zone, catchup=catchup, name=name, tz_given=tz is not None
    )


def every(
    interval: str | timedelta,
    *,
    start: str | datetime | None = None,
    tz: str | None = None,
    catchup: Catchup = "latest",
    name: str | None = None,
) -> Schedule:
    """A fixed-interval schedule: "30s", "15m", "1h", "1h30m", "1d", "2w" or a timedelta.

    Intervals of whole days or weeks are calendar days in ``tz``: they tick at the same local
    wall time every N days across DST changes (a skipped wall time ticks at the first instant
    after the gap, a repeated one at its first occurrence). Any other interval is real
    elapsed time. Ticks are ``start + k * interval`` for k >= 0, never before ``start``; a
    naive or string ``start`` is wall-clock time in ``tz``. Without ``start``, whole-day
    intervals are anchored at local midnight of 1970-01-01 (whole weeks: Monday 1970-01-05,
    so "1w" ticks on Mondays) and other intervals at the Unix epoch (so "15m" ticks at :00,
    :15, :30 and :45 of every UTC hour). Without ``tz`` it runs in its pipeline's zone, like
    ``cron()``.
    """
    given = tz is not None
    tz = "UTC" if tz is None else tz
    step = _parse_interval(interval)
    zone = zone_for(tz, ScheduleError)
    anchor: datetime | None = None
    wall: datetime | None = None
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.strip())
        except ValueError:
            raise ScheduleError(
                f"start {start!r} is not a date or time (expected e.g. 2026-01-01T05:00)"
            ) from None
    if isinstance(start, datetime):
        if start.utcoffset() is None and is_skipped(start, zone):
            raise ScheduleError(
                f"start {start.isoformat()} does not exist in {tz} (skipped by a DST change)"
            )
        naive = start.utcoffset() is None
        anchor = wall_to_instant(start, zone) if naive else start.astimezone(zone)
        wall = start if naive and not given else None
    elif start is not None:
        raise ScheduleError(f"start must be a str or datetime, got {type(start).__name__}")
    label = f"every {_format_interval(step)}"
    return Schedule(
        "interval",
        label,
        tz=tz,
        catchup=catchup,
        name=name,
        interval=step,
        start=anchor,
        tz_given=given,
        wall_start=wall,
    )


def parse_schedule(value: str | Schedule, *, tz: str = "UTC") -> Schedule:
    """A Schedule from "0 2 * * *", "@daily", "every 15m" or a Schedule, evaluated in ``tz``
    unless a Schedule names its own zone."""
    if isinstance(value, Schedule):
        return value.in_default_zone(tz)
    if not isinstance(value, str):
        raise ScheduleError(
            "expected a cron expression, 'every <interval>' or a Schedule, "
            f"got {type(value).__name__}"
        )
    text = value.strip()
    if text.lower().startswith("every"):
        return every(text[5:], tz=tz)
    return cron(text, tz=tz)
