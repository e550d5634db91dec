"""Partition sets: calendar windows across DST, keys, ranges, ticks, static and multi sets."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from legato.definitions.partitioning import (
    MultiPartitions,
    Partition,
    PartitionError,
    PartitionSet,
    StaticPartitions,
    TimeWindows,
    daily,
    hourly,
    monthly,
    multi,
    static,
    weekly,
)

BERLIN = "Europe/Berlin"  # 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00
NEW_YORK = "America/New_York"  # 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00
LATER = datetime(2030, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type, misc]


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))  # type: ignore[arg-type, misc]


def real_length(p: Partition) -> timedelta:
    assert p.start is not None and p.end is not None
    return p.end.astimezone(UTC) - p.start.astimezone(UTC)


# --- daily windows -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "key", "hours"),
    [
        (BERLIN, "2026-03-29", 23),
        (BERLIN, "2026-10-25", 25),
        (BERLIN, "2026-07-01", 24),
        (NEW_YORK, "2026-03-08", 23),
        (NEW_YORK, "2026-11-01", 25),
    ],
)
def test_daily_window_is_local_midnight_to_midnight(tz: str, key: str, hours: int) -> None:
    p = daily("2026-01-01", tz=tz).get(key)
    assert p.key == key
    assert p.dims == {"date": key}
    assert real_length(p) == timedelta(hours=hours)
    assert p.start is not None and p.end is not None
    assert p.start.tzinfo == ZoneInfo(tz)
    assert (p.start.hour, p.start.minute) == (0, 0)
    assert p.start.date() == date.fromisoformat(key)
    assert p.end.astimezone(ZoneInfo(tz)).date() == date.fromisoformat(key) + timedelta(days=1)


def test_daily_window_when_midnight_is_skipped() -> None:
    # Chile springs forward at midnight: 2026-09-06 starts at 01:00 local and lasts 23 h.
    days = daily("2026-09-01", tz="America/Santiago")
    p = days.get("2026-09-06")
    assert p.start is not None
    assert p.start.isoformat() == "2026-09-06T01:00:00-03:00"
    assert real_length(p) == timedelta(hours=23)
    assert days.get("2026-09-05").end == p.start
    assert days.key_of(utc(2026, 9, 6, 3, 59)) == "2026-09-05"
    assert days.key_of(utc(2026, 9, 6, 4, 0)) == "2026-09-06"
    assert daily("2026-09-06", tz="America/Santiago").start == p.start


def test_daily_keys_respect_start_end_and_now() -> None:
    days = daily("2026-01-01", tz=BERLIN)
    # Berlin midnight of 2026-01-04 is 2026-01-03 23:00 UTC: three windows have ended.
    assert days.keys(utc(2026, 1, 3, 23)) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert days.keys(utc(2026, 1, 3, 22, 59, 59)) == ["2026-01-01", "2026-01-02"]
    assert days.keys(utc(2025, 6, 1)) == []
    assert days.keys(utc(2025, 12, 31, 23)) == []  # the first window has only just begun
    bounded = daily("2026-01-01", end="2026-01-03", tz=BERLIN)
    assert bounded.keys(LATER) == ["2026-01-01", "2026-01-02"]
    assert bounded.keys(utc(2026, 1, 2, 12)) == ["2026-01-01"]
    assert len(days.keys(utc(2027, 1, 1))) == 365


def test_daily_get_errors() -> None:
    days = daily("2026-01-01", end="2027-01-01", tz=BERLIN)
    with pytest.raises(PartitionError) as info:
        days.get("2026-13-01")
    assert str(info.value) == "'2026-13-01' is not a daily partition key (expected YYYY-MM-DD)"
    with pytest.raises(PartitionError, match=r"^'2026-1-01' is not a daily partition key"):
        days.get("2026-1-01")
    with pytest.raises(PartitionError) as info:
        days.get("2025-12-31")
    assert str(info.value) == "partition key '2025-12-31' is before the first partition 2026-01-01"
    with pytest.raises(PartitionError) as info:
        days.get("2027-01-01")
    assert str(info.value) == "partition key '2027-01-01' is after the last partition 2026-12-31"
    assert days.get("2026-12-31").key == "2026-12-31"
    with pytest.raises(PartitionError, match="not a daily partition key"):
        days.get(20260101)  # type: ignore[arg-type]


# --- hourly windows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "count"),
    [
        (BERLIN, "2026-03-29", 23),
        (BERLIN, "2026-10-25", 25),
        (NEW_YORK, "2026-03-08", 23),
        (NEW_YORK, "2026-11-01", 25),
        (NEW_YORK, "2026-07-04", 24),
    ],
)
def test_hourly_windows_are_real_hours(tz: str, day: str, count: int) -> None:
    d = date.fromisoformat(day)
    hours = hourly(d, end=d + timedelta(days=1), tz=tz)
    keys = hours.keys(LATER)
    assert len(keys) == count
    assert len(set(keys)) == count
    parts = [hours.get(k) for k in keys]
    assert all(real_length(p) == timedelta(hours=1) for p in parts)
    assert all(a.end == b.start for a, b in pairwise(parts))
    assert [p.key for p in parts] == keys
    # Within one UTC offset, keys sort in time order.
    for offset in {k[16:] for k in keys}:
        same = [k for k in keys if k.endswith(offset)]
        assert same == sorted(same)


def test_hourly_keys_on_the_fall_back_night() -> None:
    hours = hourly("2026-10-25", end="2026-10-25T05:00", tz=BERLIN)
    assert hours.keys(LATER) == [
        "2026-10-25T00:00+02:00",
        "2026-10-25T01:00+02:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:00+01:00",
        "2026-10-25T03:00+01:00",
        "2026-10-25T04:00+01:00",
    ]
    assert hours.key_of(utc(2026, 10, 25, 0, 30)) == "2026-10-25T02:00+02:00"
    assert hours.key_of(utc(2026, 10, 25, 1, 30)) == "2026-10-25T02:00+01:00"
    spring = hourly("2026-03-29", end="2026-03-29T04:00", tz=BERLIN)
    assert spring.keys(LATER) == [
        "2026-03-29T00:00+01:00",
        "2026-03-29T01:00+01:00",
        "2026-03-29T03:00+02:00",
    ]


def test_hourly_get_normalises_keys_without_offset() -> None:
    hours = hourly("2026-01-01", tz=BERLIN)
    first = hours.get("2026-10-25T02:00")
    assert first.key == "2026-10-25T02:00+02:00"
    assert first.dims == {"date": "2026-10-25T02:00+02:00"}
    second = hours.get("2026-10-25T02:00+01:00")
    assert second.key == "2026-10-25T02:00+01:00"
    assert second.start is not None and first.start is not None
    assert second.start.astimezone(UTC) - first.start.astimezone(UTC) == timedelta(hours=1)
    assert hours.get("2026-06-01T12:00").key == "2026-06-01T12:00+02:00"
    assert hours.get("2026-06-01T12:00+02:00") == hours.get("2026-06-01T12:00")
    assert hourly("2026-01-01").get("2026-06-01T12:00").key == "2026-06-01T12:00+00:00"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("2026-03-29T02:00", "hourly partition key '2026-03-29T02:00' does not exist in "
         "Europe/Berlin (skipped by a DST change)"),
        ("2026-06-01T12:00+01:00", "'2026-06-01T12:00+01:00' is not an hourly partition key: "
         "no hourly window starts at 2026-06-01T12:00+01:00 in Europe/Berlin"),
        ("2026-06-01T12:30", "no hourly window starts at 2026-06-01T12:30"),
        ("2026-06-01 12:00", "'2026-06-01 12:00' is not an hourly partition key (expected "
         "YYYY-MM-DDTHH:MM+HH:MM, offset optional)"),
        ("2026-06-01T25:00", "is not an hourly partition key (expected"),
        ("2026-06-01", "is not an hourly partition key (expected"),
        ("2025-12-31T23:00", "partition key '2025-12-31T23:00' is before the first partition "
         "2026-01-01T00:00+01:00"),
    ],
)  # fmt: skip
def test_hourly_get_errors(key: str, message: str) -> None:
    with pytest.raises(PartitionError) as info:
        hourly("2026-01-01", tz=BERLIN).get(key)
    assert message in str(info.value)


def test_hourly_keys_for_five_years_are_fast() -> None:
    hours = hourly("2021-01-01", tz=BERLIN)
    began = time.perf_counter()
    keys = hours.keys(local(BERLIN, 2026, 1, 1))
    elapsed = time.perf_counter() - began
    assert len(keys) == 5 * 365 * 24 + 24  # 2024 is a leap year; DST hours cancel out
    assert keys[0] == "2021-01-01T00:00+01:00"
    assert keys[-1] == "2025-12-31T23:00+01:00"
    assert elapsed < 1.0


# --- weekly and monthly ------------------------------------------------------------------


def test_weekly_windows() -> None:
    weeks = weekly("2025-12-29", tz=BERLIN)
    assert weeks.keys(local(BERLIN, 2026, 1, 19)) == ["2025-12-29", "2026-01-05", "2026-01-12"]
    assert weeks.keys(local(BERLIN, 2026, 1, 18, 23, 59)) == ["2025-12-29", "2026-01-05"]
    p = weeks.get("2026-03-23")  # contains the spring-forward Sunday
    assert p.start == local(BERLIN, 2026, 3, 23)
    assert p.end == local(BERLIN, 2026, 3, 30)
    assert real_length(p) == timedelta(hours=7 * 24 - 1)
    assert weeks.key_of(local(BERLIN, 2026, 3, 29, 23, 59)) == "2026-03-23"
    assert weeks.key_of(local(BERLIN, 2026, 3, 30)) == "2026-03-30"
    with pytest.raises(PartitionError) as info:
        weeks.get("2026-01-01")
    assert str(info.value) == (
        "'2026-01-01' is not a weekly partition key: 2026-01-01 is a Thursday "
        "(weekly keys are Mondays)"
    )
    with pytest.raises(PartitionError) as info:
        weekly("2026-01-01")
    assert str(info.value) == (
        "start 2026-01-01 is not aligned to a weekly window (must be a Monday 00:00 in UTC)"
    )


def test_monthly_windows() -> None:
    months = monthly("2026-01", end="2026-06", tz=BERLIN)
    assert months.keys(LATER) == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    assert months.keys(local(BERLIN, 2026, 3, 1)) == ["2026-01", "2026-02"]
    p = months.get("2026-02")
    assert (p.start, p.end) == (local(BERLIN, 2026, 2, 1), local(BERLIN, 2026, 3, 1))
    assert real_length(months.get("2026-03")) == timedelta(days=31, hours=-1)
    # 2026-03-31 22:30 UTC is already April in Berlin.
    assert months.key_of(utc(2026, 3, 31, 22, 30)) == "2026-04"
    assert months.key_of(utc(2026, 3, 31, 21, 30)) == "2026-03"
    assert months.describe() == {
        "kind": "monthly",
        "name": "date",
        "start": "2026-01",
        "end": "2026-06",
        "tz": BERLIN,
    }
    for bad in ("2026-13", "2026-1", "2026-01-01", "26-01"):
        with pytest.raises(PartitionError, match="is not a monthly partition key"):
            months.get(bad)
    with pytest.raises(PartitionError, match="after the last partition 2026-05"):
        months.get("2026-06")
    with pytest.raises(PartitionError, match="not aligned to a monthly window"):
        monthly("2026-01-15")
    assert monthly(date(2026, 1, 1)) == monthly("2026-01-01") == monthly("2026-01")


# --- construction ------------------------------------------------------------------------


def test_start_forms_are_equivalent() -> None:
    expected = daily("2026-01-01", tz=BERLIN)
    assert daily(date(2026, 1, 1), tz=BERLIN) == expected
    assert daily(datetime(2026, 1, 1), tz=BERLIN) == expected  # naive: wall clock in tz
    assert daily(utc(2025, 12, 31, 23), tz=BERLIN) == expected  # aware, in another zone
    assert expected.start == local(BERLIN, 2026, 1, 1)
    assert expected.end is None
    assert hourly("2026-01-01T05:00", tz=BERLIN).start == local(BERLIN, 2026, 1, 1, 5)


def test_construction_errors() -> None:
    with pytest.raises(PartitionError, match=r"^unknown time zone 'Europe/Berln'$"):
        daily("2026-01-01", tz="Europe/Berln")
    with pytest.raises(PartitionError) as info:
        daily("2026-01-01T05:00", tz=BERLIN)
    assert str(info.value) == (
        "start 2026-01-01T05:00 is not aligned to a daily window "
        "(must be local midnight in Europe/Berlin)"
    )
    with pytest.raises(PartitionError, match="not aligned to an hourly window"):
        hourly("2026-01-01T00:30")
    with pytest.raises(PartitionError, match="does not exist in Europe/Berlin"):
        hourly("2026-03-29T02:00", tz=BERLIN)
    with pytest.raises(PartitionError, match="end '2026-01-01' is not after start '2026-01-01'"):
        daily("2026-01-01", end="2026-01-01")
    with pytest.raises(PartitionError, match="is not a date or time"):
        daily("yesterday")
    with pytest.raises(PartitionError, match="must be a str, date or datetime"):
        daily(20260101)  # type: ignore[arg-type]
    with pytest.raises(PartitionError, match="unit 'yearly' must be one of"):
        TimeWindows("yearly", "2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(PartitionError, match="dimension name 'my date' must be an identifier"):
        daily("2026-01-01", name="my date")


def test_naive_times_are_rejected() -> None:
    days = daily("2026-01-01")
    naive = datetime(2026, 2, 1)
    for call in (days.keys, days.for_tick, days.window_of, days.key_of):
        with pytest.raises(ValueError, match="must be a timezone-aware datetime, got naive"):
            call(naive)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        days.range("2026-01-01", "2026-01-02", naive)
    with pytest.raises(ValueError, match="must be a timezone-aware"):
        static(["a"]).keys(naive)


def test_value_semantics() -> None:
    days = daily("2026-01-01", tz=BERLIN)
    assert days == daily("2026-01-01", tz=BERLIN)
    assert days != daily("2026-01-01", tz=BERLIN, name="day")
    assert hash(days) == hash(daily("2026-01-01", tz=BERLIN))
    with pytest.raises(dataclasses.FrozenInstanceError):
        days.tz = "UTC"  # type: ignore[misc]
    p = days.get("2026-01-02")
    assert p == days.get("2026-01-02")
    assert len({p, days.get("2026-01-02")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.key = "x"  # type: ignore[misc]


# --- for_tick, window_of, range ----------------------------------------------------------


def test_for_tick_targets_the_latest_closed_window() -> None:
    days = daily("2026-01-01", tz=BERLIN)
    [p] = days.for_tick(local(BERLIN, 2026, 11, 21, 2))
    assert p.key == "2026-11-20"
    assert days.for_tick(local(BERLIN, 2026, 11, 21))[0].key == "2026-11-20"
    assert days.for_tick(local(BERLIN, 2026, 11, 20, 23, 59))[0].key == "2026-11-19"
    assert days.for_tick(utc(2026, 11, 21, 1)) == days.for_tick(local(BERLIN, 2026, 11, 21, 2))
    assert days.for_tick(local(BERLIN, 2026, 1, 1, 12)) == []  # no window has closed yet
    assert days.for_tick(local(BERLIN, 2026, 1, 2))[0].key == "2026-01-01"
    bounded = daily("2026-01-01", end="2026-02-01", tz=BERLIN)
    assert bounded.for_tick(local(BERLIN, 2026, 2, 1, 2))[0].key == "2026-01-31"
    assert bounded.for_tick(local(BERLIN, 2026, 2, 2, 2)) == []  # after the end
    hours = hourly("2026-01-01", tz=BERLIN)
    # 02:00 UTC on the fall-back night is 03:00 CET: the second 02:00 hour has just closed.
    assert hours.for_tick(utc(2026, 10, 25, 2))[0].key == "2026-10-25T02:00+01:00"
    assert hours.for_tick(utc(2026, 10, 25, 1))[0].key == "2026-10-25T02:00+02:00"


def test_window_of_and_key_of_ignore_start_and_end() -> None:
    days = daily("2026-01-01", end="2026-02-01", tz=NEW_YORK)
    p = days.window_of(utc(2025, 6, 1, 3))
    assert p.key == "2025-05-31"
    assert (p.start, p.end) == (local(NEW_YORK, 2025, 5, 31), local(NEW_YORK, 2025, 6, 1))
    assert days.key_of(utc(2026, 11, 1, 4, 30)) == "2026-11-01"
    assert days.key_of(utc(2026, 11, 1, 3, 59)) == "2026-10-31"


def test_range() -> None:
    days = daily("2026-01-01", end="2026-12-01", tz=BERLIN)
    now = local(BERLIN, 2026, 1, 10, 12)
    assert days.range("2026-01-03", "2026-01-05", now) == ["2026-01-03", "2026-01-04", "2026-01-05"]
    assert days.range("2026-01-09", "2026-01-09", now) == ["2026-01-09"]
    hours = hourly("2026-10-25", tz=BERLIN)
    assert hours.range("2026-10-25T02:00", "2026-10-25T03:00", LATER) == [
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:00+01:00",
        "2026-10-25T03:00+01:00",
    ]


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-01-05", "2026-01-03",
         "first partition '2026-01-05' is after last partition '2026-01-03'"),
        ("2025-12-30", "2026-01-03",
         "partition key '2025-12-30' is before the first partition 2026-01-01"),
        ("2026-01-03", "2026-01-10",
         "partition '2026-01-10' does not exist yet: it will exist at "
         "2026-01-11T00:00:00+01:00, when its window ends"),
        ("2026-01-03", "2026-12-01",
         "partition key '2026-12-01' is after the last partition 2026-11-30"),
        ("2026-01-03", "2026/01/05",
         "'2026/01/05' is not a daily partition key (expected YYYY-MM-DD)"),
    ],
)  # fmt: skip
def test_range_errors(first: str, last: str, message: str) -> None:
    days = daily("2026-01-01", end="2026-12-01", tz=BERLIN)
    with pytest.raises(PartitionError) as info:
        days.range(first, last, local(BERLIN, 2026, 1, 10, 12))
    assert str(info.value) == message


# --- static ------------------------------------------------------------------------------


def test_static_partitions() -> None:
    regions = static(["us", "eu", "apac"], name="region")
    assert regions.dimensions == ("region",)
    assert regions.time_dimension is None
    assert regions.keys(LATER) == ["us", "eu", "apac"]  # order as given
    assert regions.get("eu") == Partition("eu", {"region": "eu"}, None, None)
    assert regions.range("us", "eu", LATER) == ["us", "eu"]
    assert [p.key for p in regions.for_tick(LATER)] == ["us", "eu", "apac"]
    assert all(p.start is None and p.end is None for p in regions.for_tick(LATER))
    assert regions.describe() == {"kind": "static", "name": "region", "keys": ["us", "eu", "apac"]}
    assert static(["a"]).dimensions == ("key",)
    with pytest.raises(PartitionError) as info:
        regions.get("mars")
    assert str(info.value) == "unknown partition key 'mars' (expected one of: us, eu, apac)"
    with pytest.raises(PartitionError, match="first partition 'apac' is after last partition"):
        regions.range("apac", "us", LATER)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "static keys must not be empty"),
        (["a", ""], "static key '' must be a non-empty string"),
        (["a", 1], "static key 1 must be a non-empty string"),
        (["a", "b", "a"], "static key 'a' is listed twice"),
        (["a|b"], "static key 'a|b' must not contain '|'"),
        ("ab", "static keys must be a list of strings, not the string 'ab'"),
    ],
)
def test_static_validation(keys: list[str], message: str) -> None:
    with pytest.raises(PartitionError) as info:
        static(keys)
    assert str(info.value) == message


# --- multi -------------------------------------------------------------------------------


def regions_by_day() -> MultiPartitions:
    return multi(date=daily("2026-01-01", tz=BERLIN), region=static(["eu", "us"]))


def test_multi_keys_and_get() -> None:
    m = regions_by_day()
    assert m.dimensions == ("date", "region")
    assert m.time_dimension == daily("2026-01-01", tz=BERLIN)
    assert m.keys(local(BERLIN, 2026, 1, 3)) == [
        "2026-01-01|eu",
        "2026-01-01|us",
        "2026-01-02|eu",
        "2026-01-02|us",
    ]
    p = m.get("2026-11-20|eu")
    assert p.key == "2026-11-20|eu"
    assert p.dims == {"date": "2026-11-20", "region": "eu"}
    assert (p.start, p.end) == (local(BERLIN, 2026, 11, 20), local(BERLIN, 2026, 11, 21))
    assert m.keys(local(BERLIN, 2026, 1, 1, 12)) == []


def test_multi_with_static_first_is_still_time_major() -> None:
    m = multi(region=static(["eu", "us"]), day=daily("2026-01-01", name="date"))
    assert m.dimensions == ("region", "day")  # keyword names override the sets' names
    assert m.keys(utc(2026, 1, 3)) == [
        "eu|2026-01-01",
        "us|2026-01-01",
        "eu|2026-01-02",
        "us|2026-01-02",
    ]
    p = m.get("us|2026-01-02")
    assert p.dims == {"region": "us", "day": "2026-01-02"}
    assert p.start == utc(2026, 1, 2)
    assert [q.key for q in m.for_tick(utc(2026, 1, 3, 6))] == ["eu|2026-01-02", "us|2026-01-02"]


def test_multi_two_static_sets() -> None:
    m = multi(region=static(["eu", "us"]), tier=static(["gold", "free"]))
    assert m.time_dimension is None
    assert m.keys(LATER) == ["eu|gold", "eu|free", "us|gold", "us|free"]
    assert m.get("us|free").start is None
    assert len(m.for_tick(LATER)) == 4


def test_multi_range_is_a_rectangle() -> None:
    m = multi(
        date=daily("2026-01-01", tz=BERLIN), region=static(["eu", "us", "apac"], name="r")
    )
    now = local(BERLIN, 2026, 2, 1)
    assert m.range("2026-01-02|us", "2026-01-03|apac", now) == [
        "2026-01-02|us",
        "2026-01-02|apac",
        "2026-01-03|us",
        "2026-01-03|apac",
    ]
    assert m.range("2026-01-02|eu", "2026-01-02|eu", now) == ["2026-01-02|eu"]
    with pytest.raises(PartitionError) as info:
        m.range("2026-01-02|apac", "2026-01-03|us", now)
    assert str(info.value) == (
        "range '2026-01-02|apac' to '2026-01-03|us', dimension 'region': "
        "first partition 'apac' is after last partition 'us'"
    )
    with pytest.raises(PartitionError, match="dimension 'date': partition '2026-02-01' does"):
        m.range("2026-01-02|eu", "2026-02-01|eu", now)
    with pytest.raises(PartitionError, match="is not a multi partition key"):
        m.range("2026-01-02", "2026-01-03|eu", now)


def test_multi_get_errors() -> None:
    m = regions_by_day()
    with pytest.raises(PartitionError) as info:
        m.get("2025-12-31|eu")
    assert str(info.value) == (
        "partition key '2025-12-31|eu', dimension 'date': "
        "partition key '2025-12-31' is before the first partition 2026-01-01"
    )
    with pytest.raises(PartitionError, match="dimension 'region': unknown partition key 'mars'"):
        m.get("2026-01-01|mars")
    for bad in ("2026-01-01", "2026-01-01|eu|x", ""):
        with pytest.raises(PartitionError) as info:
            m.get(bad)
        assert str(info.value) == (
            f"{bad!r} is not a multi partition key (expected '<date>|<region>')"
        )


def test_multi_for_tick() -> None:
    m = regions_by_day()
    parts = m.for_tick(local(BERLIN, 2026, 11, 21, 2))
    assert [p.key for p in parts] == ["2026-11-20|eu", "2026-11-20|us"]
    assert all(p.start == local(BERLIN, 2026, 11, 20) for p in parts)
    assert m.for_tick(local(BERLIN, 2026, 1, 1, 12)) == []


def test_multi_validation() -> None:
    days = daily("2026-01-01")
    with pytest.raises(PartitionError, match="exactly two dimensions, got 1"):
        multi(date=days)
    with pytest.raises(PartitionError, match="exactly two dimensions, got 3"):
        multi(a=days, b=static(["x"]), c=static(["y"]))
    with pytest.raises(PartitionError, match="at most one time dimension"):
        multi(a=days, b=hourly("2026-01-01"))
    with pytest.raises(PartitionError, match="dimension 'b' must be a time or static set"):
        multi(a=days, b=multi(x=static(["1"]), y=static(["2"])))
    with pytest.raises(PartitionError, match="dimension 'key' is given twice"):
        MultiPartitions((static(["a"]), static(["b"])))


def test_describe_is_json() -> None:
    m = regions_by_day()
    assert m.describe() == {
        "kind": "multi",
        "dimensions": {
            "date": {
                "kind": "daily",
                "name": "date",
                "start": "2026-01-01",
                "end": None,
                "tz": BERLIN,
            },
            "region": {"kind": "static", "name": "region", "keys": ["eu", "us"]},
        },
    }
    assert hourly("2026-01-01", end="2026-01-02", tz=NEW_YORK).describe() == {
        "kind": "hourly",
        "name": "date",
        "start": "2026-01-01T00:00-05:00",
        "end": "2026-01-02T00:00-05:00",
        "tz": NEW_YORK,
    }
    assert weekly("2025-12-29").describe()["start"] == "2025-12-29"
    json.dumps(m.describe())


def test_static_partitions_class_directly() -> None:
    assert StaticPartitions(("a", "b"), name="x").keys(LATER) == ["a", "b"]


@pytest.mark.parametrize(
    "parts",
    [
        hourly(start="2026-03-28", tz="Europe/Berlin"),  # a day of 23 hours among them
        daily(start="2026-01-01"),
        monthly(start="2020-01"),
        static(["eu", "us", "apac", "latam"]),
        multi(date=daily(start="2026-01-01"), region=static(["eu", "us", "apac"])),
    ],
)
def test_a_slice_of_a_range_is_the_range_sliced(parts: PartitionSet) -> None:
    now = datetime(2026, 4, 3, tzinfo=UTC)
    keys = parts.keys(now)
    first, last = keys[1], keys[-2]
    whole = parts.range(first, last, now)
    for start, stop in [(0, 1), (0, len(whole)), (3, 7), (len(whole) - 1, len(whole) + 5),
                        (len(whole), len(whole) + 1), (5, 2)]:
        assert parts.range_slice(first, last, start, stop, now) == whole[start:stop]
    with pytest.raises(PartitionError):
        parts.range_slice(last, first, 0, 1, now)


@pytest.mark.parametrize(
    "parts",
    [
        hourly("2026-03-07", tz="America/New_York"),
        daily("2026-01-01"),
        static(["a", "b", "c"]),
        multi(date=daily("2026-01-01"), region=static(["eu", "us"])),
        multi(region=static(["eu", "us"]), date=hourly("2026-03-08")),
    ],
)
def test_newest_keys_are_the_end_of_keys(parts: PartitionSet) -> None:
    now = datetime(2026, 3, 9, 12, tzinfo=UTC)
    every = parts.keys(now)
    for n in (0, 1, 5, len(every), len(every) + 3):
        assert parts.newest(now, n) == (every[-n:] if n else [])
    every.clear()  # a caller changing its list changes no one else's
    assert parts.keys(now)


def test_keys_made_once_grow_with_time_and_go_back_with_it() -> None:
    now = datetime(2026, 3, 9, 12, tzinfo=UTC)
    hours = hourly("2026-03-07", tz=NEW_YORK)
    first = hours.keys(now)
    later = hours.keys(now + timedelta(hours=30))
    assert later[: len(first)] == first and len(later) == len(first) + 30
    # An equal set made anew (a reload of the code) and one asked about an earlier time.
    assert hourly("2026-03-07", tz=NEW_YORK).keys(now + timedelta(hours=30)) == later
    assert hours.keys(now - timedelta(hours=5)) == first[:-5]
    assert later[-1] == "2026-03-10T13:00-04:00"  # across the spring-forward night
