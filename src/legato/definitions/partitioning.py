"""Partition sets: calendar time windows, static keys, and two-dimensional products of them.

Pure and clock-free: every "now" is passed in. Time windows are calendar windows in the set's
time zone (a daily window runs from local midnight to the next, so it is 23 h or 25 h long on
DST change days), except hourly windows, which are real elapsed hours keyed by local wall time
plus UTC offset so that the two 02:00 hours of a fall-back night get distinct keys.
"""

from __future__ import annotations

import re
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import product
from typing import Any, Literal
from zoneinfo import ZoneInfo

Unit = Literal["hourly", "daily", "weekly", "monthly"]
TimeValue = str | date | datetime

_HOUR = timedelta(hours=1)
_ARTICLE = {"hourly": "an hourly", "daily": "a daily", "weekly": "a weekly", "monthly": "a monthly"}
# Per unit: key pattern, key format for messages, and where windows start.
_UNITS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "hourly": (
        re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}([+-]\d{2}:\d{2})?"),
        "YYYY-MM-DDTHH:MM+HH:MM, offset optional",
        "the start of a local hour",
    ),
    "daily": (re.compile(r"\d{4}-\d{2}-\d{2}"), "YYYY-MM-DD", "local midnight"),
    "weekly": (re.compile(r"\d{4}-\d{2}-\d{2}"), "YYYY-MM-DD of a Monday", "a Monday 00:00"),
    "monthly": (re.compile(r"\d{4}-\d{2}"), "YYYY-MM", "the 1st of a month at 00:00"),
}


class PartitionError(ValueError):
    """A partition set is defined wrongly, or a key or time does not fit it."""


def zone_for(tz: str, error: type[ValueError] = PartitionError) -> ZoneInfo:
    """The ZoneInfo for an IANA name; raises ``error`` with a one-line message if unknown."""
    if not isinstance(tz, str) or not tz:
        raise error(f"unknown time zone {tz!r}")
    try:
        return ZoneInfo(tz)
    # Unknown names raise KeyError; directory or malformed names raise OSError or ValueError.
    except (KeyError, ValueError, OSError) as exc:
        raise error(f"unknown time zone {tz!r}") from exc


def is_skipped(wall: datetime, zone: ZoneInfo) -> bool:
    """True if the naive wall time does not exist in ``zone`` (it falls in a DST gap)."""
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (aware, in ``zone``) of a naive local wall time.

    An ambiguous wall time (fall back) means its first occurrence; one skipped by a
    spring-forward gap means the first instant after the gap, as Debian cron does.
    """
    first = wall.replace(tzinfo=zone, fold=0)
    if not is_skipped(wall, zone):
        return first
    # Inside a gap the two folds map to instants either side of the transition: bisect.
    a, b = first.astimezone(UTC), wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    after = hi.astimezone(zone).utcoffset()
    while hi - lo > timedelta(microseconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.astimezone(zone)


def require_aware(value: datetime, what: str, error: type[ValueError] = PartitionError) -> None:
    """Raise ``error`` unless ``value`` is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise error(f"{what} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise error(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")


@dataclass(frozen=True)
class Partition:
    """One partition: its key, its per-dimension keys and, for time partitions, its window.

    ``start`` and ``end`` share a ZoneInfo, so ``end - start`` is wall-clock time (24 h on a
    23 h day); convert to UTC first for the real length.
    """

    key: str
    dims: Mapping[str, str] = field(hash=False)
    start: datetime | None = None
    end: datetime | None = None


class PartitionSet(ABC):
    """A set of partitions: one time or static dimension, or a product of two."""

    @property
    @abstractmethod
    def dimensions(self) -> tuple[str, ...]:
        """Dimension names, e.g. ``("date",)`` or ``("date", "region")``."""

    @abstractmethod
    def get(self, key: str) -> Partition:
        """Parse and validate a key; PartitionError if it is malformed or out of range."""

    def existing(self, key: str, now: datetime) -> Partition:
        """The partition for ``key`` if it exists at ``now``.

        PartitionError if the key is not valid, or if its window has not ended by ``now``
        (the message says when it will exist).
        """
        require_aware(now, "now")
        part = self.get(key)
        if part.end is not None and part.end.astimezone(UTC) > now.astimezone(UTC):
            raise PartitionError(_not_yet(part.key, part.end))
        return part

    @abstractmethod
    def keys(self, now: datetime) -> list[str]:
        """Every partition that exists at ``now``, oldest first (time windows must have ended)."""

    def newest(self, now: datetime, n: int) -> list[str]:
        """The last ``n`` of ``keys(now)``, oldest first (sets override it to skip the rest)."""
        return self.keys(now)[-n:] if n > 0 else []

    @abstractmethod
    def range(self, first: str, last: str, now: datetime) -> list[str]:
        """Keys from ``first`` to ``last`` inclusive, in ``keys()`` order.

        PartitionError if either is not a valid key, is not in ``keys(now)``, or first > last.
        """

    def range_slice(
        self, first: str, last: str, start: int, stop: int, now: datetime
    ) -> list[str]:
        """Keys ``start``..``stop - 1`` of ``range(first, last, now)``: time windows work
        them out without listing the rest of the range."""
        return self.range(first, last, now)[start:stop]

    @abstractmethod
    def for_tick(self, tick: datetime) -> list[Partition]:
        """The partitions a scheduled run at ``tick`` targets (the latest closed window)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """A JSON-able description for snapshots and the UI."""

    @property
    def time_dimension(self) -> TimeWindows | None:
        """The time-window part of this set, if any."""
        return None


def _not_yet(key: str, end: datetime) -> str:
    return (
        f"partition {key!r} does not exist yet: it will exist at {end.isoformat()}, "
        "when its window ends"
    )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise PartitionError(f"dimension name {name!r} must be an identifier")


def _abs_index(unit: str, d: date) -> int:
    # Absolute window numbers per unit; date(1, 1, 1) has ordinal 1 and is a Monday.
    if unit == "daily":
        return d.toordinal()
    if unit == "weekly":
        return (d.toordinal() - 1) // 7
    return d.year * 12 + d.month - 1


def _first_day(unit: str, k: int) -> date:
    if unit == "daily":
        return date.fromordinal(k)
    if unit == "weekly":
        return date.fromordinal(k * 7 + 1)
    return date(k // 12, k % 12 + 1, 1)


def _to_instant(value: TimeValue, what: str, unit: str, zone: ZoneInfo) -> datetime:
    """An aware datetime from a str/date/datetime bound; naive values are wall-clock in zone."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text + "-01" if len(text) == 7 else text)
        except ValueError:
            raise PartitionError(
                f"{what} {text!r} is not a date or time (expected e.g. 2026-01-01 or "
                "2026-01-01T05:00)"
            ) from None
    if not isinstance(value, date):
        raise PartitionError(f"{what} must be a str, date or datetime, got {value!r}")
    if not isinstance(value, datetime):
        return wall_to_instant(datetime.combine(value, time()), zone)
    if value.tzinfo is not None:
        return value.astimezone(zone)
    if unit == "hourly" and is_skipped(value, zone):
        raise PartitionError(
            f"{what} {value.isoformat()} does not exist in {zone.key} (skipped by a DST change)"
        )
    return wall_to_instant(value, zone)


#: The labels of each set of time windows worked out so far, from window 0 (see ``keys``).
_KNOWN_LABELS: weakref.WeakKeyDictionary[TimeWindows, list[str]] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


@dataclass(frozen=True, init=False)
class TimeWindows(PartitionSet):
    """Consecutive calendar windows (hourly, daily, weekly or monthly) in a time zone.

    ``start`` is the first window's start and ``end`` (exclusive) the last window's end; both
    must be aligned to the unit (local midnight, a Monday for weekly, the 1st for monthly).
    They may be a ``str`` ("2026-01-01", "2026-01-01T05:00", "2026-01"), a ``date`` or a
    ``datetime``; naive values are wall-clock times in ``tz``. Hourly windows are real hours
    counted from ``start``.
    """

    unit: Unit
    start: datetime
    end: datetime | None
    tz: str
    name: str
    _zone: ZoneInfo = field(repr=False, compare=False)
    _first: int = field(repr=False, compare=False)  # absolute number of window 0 (date units)
    _count: int | None = field(repr=False, compare=False)  # number of windows, if bounded

    def __init__(
        self,
        unit: Unit,
        start: TimeValue,
        *,
        end: TimeValue | None = None,
        tz: str = "UTC",
        name: str = "date",
    ) -> None:
        if unit not in _UNITS:
            raise PartitionError(f"unit {unit!r} must be one of {', '.join(_UNITS)}")
        _check_name(name)
        zone = zone_for(tz)
        begin = _to_instant(start, "start", unit, zone)
        first = 0 if unit == "hourly" else _abs_index(unit, begin.date())
        values = dict(unit=unit, start=begin, end=None, tz=tz, name=name, _zone=zone, _first=first)
        for attr, value in {**values, "_count": None}.items():
            object.__setattr__(self, attr, value)
        self._check_aligned(begin, "start", start)
        if end is not None:
            stop = _to_instant(end, "end", unit, zone)
            self._check_aligned(stop, "end", end)
            if stop.astimezone(UTC) <= begin.astimezone(UTC):
                raise PartitionError(f"end {end!r} is not after start {start!r}")
            object.__setattr__(self, "end", stop)
            object.__setattr__(self, "_count", self._index(stop))

    def _check_aligned(self, at: datetime, what: str, given: TimeValue) -> None:
        # Hourly windows count real hours from start, so start itself must be on a local hour.
        local = at.astimezone(self._zone).time()
        if local.replace(hour=0) != time() or self._bound(self._index(at)) != at.astimezone(UTC):
            raise PartitionError(
                f"{what} {given if isinstance(given, str) else given.isoformat()} is not aligned "
                f"to {_ARTICLE[self.unit]} window (must be {_UNITS[self.unit][2]} in {self.tz})"
            )

    # Windows are numbered from 0 (the one starting at `start`); negative ones lie before it.
    # Instants are compared in UTC: Python compares two datetimes sharing a tzinfo by wall
    # time, and a datetime in a repeated hour is never equal to one in another zone.

    def _index(self, t: datetime) -> int:
        t = t.astimezone(UTC)
        if self.unit == "hourly":
            return (t - self.start.astimezone(UTC)) // _HOUR
        i = _abs_index(self.unit, t.astimezone(self._zone).date()) - self._first
        # Differs from the local date only where a zone moves its clock back across midnight.
        while t < self._bound(i):
            i -= 1
        while t >= self._bound(i + 1):
            i += 1
        return i

    def _bound(self, i: int) -> datetime:
        """Start of window i, in UTC."""
        if self.unit == "hourly":
            return self.start.astimezone(UTC) + i * _HOUR
        day = _first_day(self.unit, self._first + i)
        return wall_to_instant(datetime.combine(day, time()), self._zone).astimezone(UTC)

    def _labels(self, i: int, j: int) -> list[str]:
        """Keys of windows i..j-1; one zone conversion per hour, none for date units."""
        if self.unit != "hourly":
            days = (_first_day(self.unit, self._first + k).isoformat() for k in range(i, j))
            return [day[:7] for day in days] if self.unit == "monthly" else list(days)
        zone, at, out = self._zone, self.start.astimezone(UTC) + i * _HOUR, []
        for _ in range(i, j):
            out.append(at.astimezone(zone).isoformat(timespec="minutes"))
            at += _HOUR
        return out

    def _label(self, i: int) -> str:
        return self._labels(i, i + 1)[0]

    def _parse(self, key: str) -> int:
        """The window number of a key (which may lie outside start..end)."""
        pattern, form, _ = _UNITS[self.unit]
        bad = f"{key!r} is not {_ARTICLE[self.unit]} partition key"
        if not isinstance(key, str) or not pattern.fullmatch(key):
            raise PartitionError(f"{bad} (expected {form})")
        try:
            at = datetime.fromisoformat(key + "-01" if self.unit == "monthly" else key)
        except ValueError:
            raise PartitionError(f"{bad} (expected {form})") from None
        if self.unit == "weekly" and at.weekday() != 0:
            raise PartitionError(f"{bad}: {key} is a {at:%A} (weekly keys are Mondays)")
        if at.tzinfo is None:
            if self.unit == "hourly" and is_skipped(at, self._zone):
                raise PartitionError(
                    f"hourly partition key {key!r} does not exist in {self.tz} "
                    "(skipped by a DST change)"
                )
            at = wall_to_instant(at, self._zone)
        i = self._index(at)
        # Rejects a time inside a window, and (for keys with an offset, longer than 16
        # characters) an offset that is not in effect at that wall time.
        if self._bound(i) != at.astimezone(UTC) or (len(key) > 16 and self._label(i) != key):
            raise PartitionError(f"{bad}: no {self.unit} window starts at {key} in {self.tz}")
        return i

    def _checked(self, key: str) -> int:
        i = self._parse(key)
        if i < 0:
            raise PartitionError(
                f"partition key {key!r} is before the first partition {self._label(0)}"
            )
        if self._count is not None and i >= self._count:
            last = self._label(self._count - 1)
            raise PartitionError(f"partition key {key!r} is after the last partition {last}")
        return i

    def _closed(self, now: datetime) -> int:
        """How many windows have ended by ``now`` (and by ``end``)."""
        require_aware(now, "now")
        limit = now if self.end is None else min(now.astimezone(UTC), self.end.astimezone(UTC))
        return max(0, self._index(limit))

    def _partition(self, i: int) -> Partition:
        key = self._label(i)
        start, end = (self._bound(k).astimezone(self._zone) for k in (i, i + 1))
        return Partition(key, {self.name: key}, start, end)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def time_dimension(self) -> TimeWindows:
        return self

    def get(self, key: str) -> Partition:
        """The partition for ``key``; an hourly key without offset means its first occurrence."""
        return self._partition(self._checked(key))

    def keys(self, now: datetime) -> list[str]:
        # Worked out once per process and extended as windows close: a page of ten years of
        # hours would otherwise spend most of its time formatting 100,000 labels again.
        n = self._closed(now)
        with _KNOWN_LOCK:
            known = _KNOWN_LABELS.setdefault(self, [])
            if len(known) < n:
                known.extend(self._labels(len(known), n))
            return known[:n]

    def newest(self, now: datetime, n: int) -> list[str]:
        closed = self._closed(now)
        return self._labels(max(0, closed - n), closed) if n > 0 else []

    def _range_bounds(self, first: str, last: str, now: datetime) -> tuple[int, int]:
        i, j = self._checked(first), self._checked(last)
        closed = self._closed(now)
        for k in (i, j):
            if k >= closed:
                end = self._bound(k + 1).astimezone(self._zone)
                raise PartitionError(_not_yet(self._label(k), end))
        if i > j:
            raise PartitionError(f"first partition {first!r} is after last partition {last!r}")
        return i, j

    def range(self, first: str, last: str, now: datetime) -> list[str]:
        i, j = self._range_bounds(first, last, now)
        return self._labels(i, j + 1)

    def range_slice(
        self, first: str, last: str, start: int, stop: int, now: datetime
    ) -> list[str]:
        i, j = self._range_bounds(first, last, now)
        lo, hi = i + max(0, start), min(j + 1, i + max(0, stop))
        return self._labels(lo, hi) if lo < hi else []

    def for_tick(self, tick: datetime) -> list[Partition]:
        require_aware(tick, "tick")
        i = self._index(tick) - 1
        if i < 0 or (self._count is not None and i >= self._count):
            return []
        return [self._partition(i)]

    def window_of(self, t: datetime) -> Partition:
        """The window containing ``t``, whether or not it lies between start and end."""
        require_aware(t, "t")
        return self._partition(self._index(t))

    def key_of(self, t: datetime) -> str:
        """The key of the window containing ``t`` (ignoring start and end, like window_of)."""
        require_aware(t, "t")
        return self._label(self._index(t))

    def describe(self) -> dict[str, Any]:
        end = None if self._count is None else self._label(self._count)
        start = self._label(0)
        return {"kind": self.unit, "name": self.name, "start": start, "end": end, "tz": self.tz}

    def renamed(self, name: str) -> TimeWindows:
        """The same windows under another dimension name."""
        return TimeWindows(self.unit, self.start, end=self.end, tz=self.tz, name=name)


@dataclass(frozen=True)
class StaticPartitions(PartitionSet):
    """A fixed, ordered list of keys, e.g. regions or customers."""

    values: tuple[str, ...]
    name: str = "key"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.values, str) or not isinstance(self.values, Sequence):
            raise PartitionError(f"static keys must be a list of strings, got {self.values!r}")
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise PartitionError("static keys must not be empty")
        for n, key in enumerate(self.values):
            if not isinstance(key, str) or not key:
                raise PartitionError(f"static key {key!r} must be a non-empty string")
            if "|" in key:
                raise PartitionError(f"static key {key!r} must not contain '|'")
            if key in self.values[:n]:
                raise PartitionError(f"static key {key!r} is listed twice")

    def _index(self, key: str) -> int:
        if key in self.values:
            return self.values.index(key)
        shown = ", ".join(self.values[:10]) + (", ..." if len(self.values) > 10 else "")
        raise PartitionError(f"unknown partition key {key!r} (expected one of: {shown})")

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (self.name,)

    def get(self, key: str) -> Partition:
        self._index(key)
        return Partition(key, {self.name: key})

    def keys(self, now: datetime) -> list[str]:
        require_aware(now, "now")
        return list(self.values)

    def range(self, first: str, last: str, now: datetime) -> list[str]:
        require_aware(now, "now")
        i, j = self._index(first), self._index(last)
        if i > j:
            raise PartitionError(f"first partition {first!r} is after last partition {last!r}")
        return list(self.values[i : j + 1])

    def for_tick(self, tick: datetime) -> list[Partition]:
        require_aware(tick, "tick")
        return [Partition(key, {self.name: key}) for key in self.values]

    def describe(self) -> dict[str, Any]:
        return {"kind": "static", "name": self.name, "keys": list(self.values)}

    def renamed(self, name: str) -> StaticPartitions:
        """The same keys under another dimension name."""
        return StaticPartitions(self.values, name=name)


OneDim = TimeWindows | StaticPartitions


@dataclass(frozen=True)
class MultiPartitions(PartitionSet):
    """The product of two one-dimensional sets; a key is the two keys joined by "|".

    Keys are listed time-major (every static key of the oldest window first; with two static
    sets, the first varies slowest). ``range(first, last, now)`` is the product of the time
    range between the two keys' time parts with the static keys between their static parts in
    static order, so ``range("2026-01-01|us", "2026-01-03|eu", now)`` fails: "us" comes after
    "eu". It is a rectangle, not a slice of ``keys()``.
    """

    parts: tuple[OneDim, OneDim]

    def __post_init__(self) -> None:
        if len(self.parts) != 2 or not all(isinstance(p, OneDim) for p in self.parts):
            raise PartitionError("multi partitions need exactly two one-dimensional sets")
        if self.parts[0].name == self.parts[1].name:
            raise PartitionError(f"dimension {self.parts[0].name!r} is given twice")
        if all(isinstance(p, TimeWindows) for p in self.parts):
            raise PartitionError("multi partitions may have at most one time dimension")

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (self.parts[0].name, self.parts[1].name)

    @property
    def time_dimension(self) -> TimeWindows | None:
        return next((p for p in self.parts if isinstance(p, TimeWindows)), None)

    def _product(self, first: list[Any], second: list[Any]) -> list[tuple[Any, Any]]:
        if isinstance(self.parts[1], TimeWindows):  # the time dimension varies slowest
            return [(a, b) for b, a in product(second, first)]
        return list(product(first, second))

    def _split(self, key: str) -> list[str]:
        parts = key.split("|") if isinstance(key, str) else []
        if len(parts) != 2:
            a, b = self.dimensions
            raise PartitionError(f"{key!r} is not a multi partition key (expected '<{a}>|<{b}>')")
        return parts

    @staticmethod
    def _join(a: Partition, b: Partition) -> Partition:
        window = a if a.start is not None else b
        return Partition(f"{a.key}|{b.key}", {**a.dims, **b.dims}, window.start, window.end)

    def _each(self, what: str, call: Callable[[OneDim, int], Any]) -> list[Any]:
        out = []
        for n, sub in enumerate(self.parts):
            try:
                out.append(call(sub, n))
            except PartitionError as exc:
                raise PartitionError(f"{what}, dimension {sub.name!r}: {exc}") from None
        return out

    def get(self, key: str) -> Partition:
        parts = self._split(key)
        a, b = self._each(f"partition key {key!r}", lambda sub, n: sub.get(parts[n]))
        return self._join(a, b)

    def keys(self, now: datetime) -> list[str]:
        pairs = self._product(self.parts[0].keys(now), self.parts[1].keys(now))
        return [f"{a}|{b}" for a, b in pairs]

    def newest(self, now: datetime, n: int) -> list[str]:
        if n <= 0:
            return []
        # Keys are time-major: the newest n lie within the newest n windows.
        subs = [p.newest(now, n) if isinstance(p, TimeWindows) else p.keys(now)
                for p in self.parts]
        return [f"{a}|{b}" for a, b in self._product(subs[0], subs[1])][-n:]

    def range(self, first: str, last: str, now: datetime) -> list[str]:
        lo, hi = self._split(first), self._split(last)
        a, b = self._each(f"range {first!r} to {last!r}", lambda s, n: s.range(lo[n], hi[n], now))
        return [f"{x}|{y}" for x, y in self._product(a, b)]

    def for_tick(self, tick: datetime) -> list[Partition]:
        pairs = self._product(self.parts[0].for_tick(tick), self.parts[1].for_tick(tick))
        return [self._join(a, b) for a, b in pairs]

    def describe(self) -> dict[str, Any]:
        return {"kind": "multi", "dimensions": {p.name: p.describe() for p in self.parts}}


def hourly(
    start: TimeValue, *, tz: str = "UTC", end: TimeValue | None = None, name: str = "date"
) -> TimeWindows:
    """Real elapsed hours from ``start``, keyed by local time + offset: "2026-10-25T02:00+02:00"."""
    return TimeWindows("hourly", start, end=end, tz=tz, name=name)


def daily(
    start: TimeValue, *, tz: str = "UTC", end: TimeValue | None = None, name: str = "date"
) -> TimeWindows:
    """Local days (midnight to midnight in ``tz``), keyed "YYYY-MM-DD"."""
    return TimeWindows("daily", start, end=end, tz=tz, name=name)


def weekly(
    start: TimeValue, *, tz: str = "UTC", end: TimeValue | None = None, name: str = "date"
) -> TimeWindows:
    """Local weeks from Monday 00:00, keyed by that Monday "YYYY-MM-DD"; start is a Monday."""
    return TimeWindows("weekly", start, end=end, tz=tz, name=name)


def monthly(
    start: TimeValue, *, tz: str = "UTC", end: TimeValue | None = None, name: str = "date"
) -> TimeWindows:
    """Local calendar months, keyed "YYYY-MM"; start is the 1st of a month."""
    return TimeWindows("monthly", start, end=end, tz=tz, name=name)


def static(keys: Sequence[str], *, name: str = "key") -> StaticPartitions:
    """A fixed list of keys (non-empty, unique, without "|"), in the order given."""
    if isinstance(keys, str):
        raise PartitionError(f"static keys must be a list of strings, not the string {keys!r}")
    return StaticPartitions(tuple(keys), name=name)


def multi(**dims: PartitionSet) -> MultiPartitions:
    """Two one-dimensional sets, at most one time-based; each keyword names its dimension.

    ``multi(date=daily("2026-01-01"), region=static(["eu", "us"]))`` has keys like
    "2026-11-20|eu".
    """
    if len(dims) != 2:
        raise PartitionError(f"multi() takes exactly two dimensions, got {len(dims)}")
    parts = []
    for name, sub in dims.items():
        if not isinstance(sub, OneDim):
            kind = type(sub).__name__
            raise PartitionError(f"dimension {name!r} must be a time or static set, got {kind}")
        parts.append(sub.renamed(name))
    return MultiPartitions((parts[0], parts[1]))
