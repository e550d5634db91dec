"""Schedules: cron and interval ticks across DST changes, catch-up policies and errors."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from legato.definitions.scheduling import (
    Schedule,
    ScheduleError,
    cron,
    every,
    parse_schedule,
)

BERLIN = "Europe/Berlin"  # 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00
NEW_YORK = "America/New_York"  # 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type, misc]


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))  # type: ignore[arg-type, misc]


def local_isos(ticks: list[datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes") for t in ticks]


def day_ticks(schedule: Schedule, tz: str, year: int, month: int, day: int) -> list[datetime]:
    """Ticks within one local calendar day, midnight included, next midnight excluded."""
    start = local(tz, year, month, day)
    end = datetime.combine(start.date() + timedelta(days=1), start.time(), tzinfo=ZoneInfo(tz))
    return schedule.ticks(start - timedelta(microseconds=1), end - timedelta(microseconds=1))


# One fixed-time daily job over the three days around each DST change: it must run exactly
# once a day, after the gap when its time is skipped, at the first occurrence when repeated.
DAILY_CASES = [
    (BERLIN, "30 2 * * *", (2026, 3, 28),
     ["2026-03-28T02:30+01:00", "2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"]),
    (BERLIN, "30 1 * * *", (2026, 3, 28),
     ["2026-03-28T01:30+01:00", "2026-03-29T01:30+01:00", "2026-03-30T01:30+02:00"]),
    (BERLIN, "30 2 * * *", (2026, 10, 24),
     ["2026-10-24T02:30+02:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"]),
    (BERLIN, "30 1 * * *", (2026, 10, 24),
     ["2026-10-24T01:30+02:00", "2026-10-25T01:30+02:00", "2026-10-26T01:30+01:00"]),
    (NEW_YORK, "30 2 * * *", (2026, 3, 7),
     ["2026-03-07T02:30-05:00", "2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"]),
    (NEW_YORK, "30 1 * * *", (2026, 3, 7),
     ["2026-03-07T01:30-05:00", "2026-03-08T01:30-05:00", "2026-03-09T01:30-04:00"]),
    (NEW_YORK, "30 2 * * *", (2026, 10, 31),
     ["2026-10-31T02:30-04:00", "2026-11-01T02:30-05:00", "2026-11-02T02:30-05:00"]),
    (NEW_YORK, "30 1 * * *", (2026, 10, 31),
     ["2026-10-31T01:30-04:00", "2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"]),
]  # fmt: skip


@pytest.mark.parametrize(("tz", "expression", "first_day", "expected"), DAILY_CASES)
def test_daily_cron_runs_once_a_day_across_dst(
    tz: str, expression: str, first_day: tuple[int, int, int], expected: list[str]
) -> None:
    schedule = cron(expression, tz=tz)
    after = local(tz, *first_day)
    ticks = schedule.ticks(after, after + timedelta(days=3))
    assert local_isos(ticks, tz) == expected
    assert all(t.tzinfo is UTC for t in ticks)
    # next_after agrees with ticks, tick by tick.
    assert [schedule.next_after(t - timedelta(seconds=1)) for t in ticks] == ticks


@pytest.mark.parametrize(("tz", "expression", "first_day", "expected"), DAILY_CASES)
def test_every_day_matches_the_daily_cron_across_dst(
    tz: str, expression: str, first_day: tuple[int, int, int], expected: list[str]
) -> None:
    minute, hour = (int(f) for f in expression.split()[:2])
    start = datetime(2026, 1, 1, hour, minute)  # naive: wall time in tz
    schedule = every("1d", start=start, tz=tz)
    after = local(tz, *first_day)
    assert local_isos(schedule.ticks(after, after + timedelta(days=3)), tz) == expected


TRANSITIONS = [
    (BERLIN, (2026, 3, 29), 23),
    (BERLIN, (2026, 10, 25), 25),
    (BERLIN, (2026, 6, 1), 24),
    (NEW_YORK, (2026, 3, 8), 23),
    (NEW_YORK, (2026, 11, 1), 25),
]


@pytest.mark.parametrize(("tz", "day", "hours"), TRANSITIONS)
@pytest.mark.parametrize("schedule", ["0 * * * *", "every 1h"])
def test_hourly_ticks_once_per_real_hour(
    tz: str, day: tuple[int, int, int], hours: int, schedule: str
) -> None:
    ticks = day_ticks(parse_schedule(schedule, tz=tz), tz, *day)
    assert len(ticks) == hours
    assert len(set(ticks)) == hours
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(ticks))


@pytest.mark.parametrize(("tz", "day", "hours"), TRANSITIONS)
@pytest.mark.parametrize("schedule", ["*/15 * * * *", "every 15m"])
def test_quarter_hourly_ticks_every_15_real_minutes(
    tz: str, day: tuple[int, int, int], hours: int, schedule: str
) -> None:
    ticks = day_ticks(parse_schedule(schedule, tz=tz), tz, *day)
    assert len(ticks) == hours * 4
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(ticks))


def test_fall_back_day_has_both_two_oclock_hours_in_berlin() -> None:
    ticks = day_ticks(cron("0 * * * *", tz=BERLIN), BERLIN, 2026, 10, 25)
    isos = local_isos(ticks, BERLIN)
    assert isos[1:5] == [
        "2026-10-25T01:00+02:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:00+01:00",
        "2026-10-25T03:00+01:00",
    ]


def test_every_day_real_lengths_on_transition_days() -> None:
    schedule = every("1d", tz=NEW_YORK)  # local midnight
    ticks = schedule.ticks(local(NEW_YORK, 2026, 3, 7, 12), local(NEW_YORK, 2026, 3, 10))
    assert [b - a for a, b in pairwise(ticks)] == [
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    ticks = schedule.ticks(local(NEW_YORK, 2026, 10, 31, 12), local(NEW_YORK, 2026, 11, 3))
    assert [b - a for a, b in pairwise(ticks)] == [
        timedelta(hours=25),
        timedelta(hours=24),
    ]


def test_next_after_inside_the_repeated_hour_skips_the_past_first_occurrence() -> None:
    schedule = cron("30 1 * * *", tz=NEW_YORK)
    # 06:15 UTC is 01:15 EST, the second 01:xx hour: 01:30 EDT (05:30 UTC) is already past.
    assert schedule.next_after(utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 2, 6, 30)
    assert schedule.next_after(utc(2026, 11, 1, 5, 15)) == utc(2026, 11, 1, 5, 30)
    assert schedule.next_after(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)
    daily = every("1d", start="2026-01-01T01:30", tz=NEW_YORK)
    assert daily.next_after(utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 2, 6, 30)


def test_next_after_is_strict_and_accepts_any_zone() -> None:
    schedule = cron("0 2 * * *", tz=BERLIN)
    tick = utc(2026, 11, 20, 1)
    assert schedule.next_after(tick - timedelta(microseconds=1)) == tick
    assert schedule.next_after(tick) == utc(2026, 11, 21, 1)
    tokyo = tick.astimezone(ZoneInfo("Asia/Tokyo"))
    assert schedule.next_after(tokyo) == utc(2026, 11, 21, 1)
    assert schedule.next_after(tokyo).tzinfo is UTC


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@monthly", utc(2026, 4, 1)),
        ("@weekly", utc(2026, 3, 8)),  # a Sunday
        ("@daily", utc(2026, 3, 4)),
        ("@midnight", utc(2026, 3, 4)),
        ("@hourly", utc(2026, 3, 3, 11)),
        ("@DAILY", utc(2026, 3, 4)),
    ],
)
def test_aliases(alias: str, expected: datetime) -> None:
    schedule = cron(alias)
    assert schedule.expression == alias
    assert schedule.next_after(utc(2026, 3, 3, 10, 30)) == expected


def test_alias_in_a_time_zone() -> None:
    schedule = cron("@daily", tz=BERLIN)
    assert schedule.next_after(utc(2026, 7, 1, 12)) == utc(2026, 7, 1, 22)
    assert schedule.describe()["cron"] == "0 0 * * *"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 * * * *': minute 61 is out of range (0-59)"),
        ("0 24 * * *", "invalid cron expression '0 24 * * *': hour 24 is out of range (0-23)"),
        ("0 0 0 * *", "day-of-month 0 is out of range (1-31)"),
        ("0 0 * 13 *", "month 13 is out of range (1-12)"),
        ("0 0 * * 8", "day-of-week 8 is out of range (0-7)"),
        ("0 0 31 2 *", "day-of-month '31' never occurs in month '2'"),
        ("x * * * *", "bad minute field 'x'"),
        ("*/0 * * * *", "bad minute field '*/0'"),
        ("0 2 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6; "
         "seconds and year fields are not supported"),
        ("0 0 2 * * * 2026", "got 7"),
        ("0 2 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("", "got 0"),
        ("@reboot", "invalid cron expression '@reboot': unknown alias (expected one of @yearly"),
    ],
)  # fmt: skip
def test_invalid_cron(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        cron(expression)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_cron_with_day_of_week_and_names() -> None:
    schedule = cron("0 9 * * MON-FRI", tz=NEW_YORK)
    ticks = schedule.ticks(local(NEW_YORK, 2026, 3, 6), local(NEW_YORK, 2026, 3, 10))
    assert local_isos(ticks, NEW_YORK) == [
        "2026-03-06T09:00-05:00",
        "2026-03-09T09:00-04:00",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0m", "interval '0m' must be positive"),
        ("-1h", "invalid interval '-1h'"),
        (timedelta(hours=-1), "interval of -3600 seconds must be positive"),
        (timedelta(0), "interval of 0 seconds must be positive"),
        ("1.5h", "invalid interval '1.5h'"),
        ("15 minutes", "invalid interval '15 minutes'"),
        ("", "invalid interval ''"),
        ("1y", "invalid interval '1y'"),
        (timedelta(milliseconds=500), "interval of 0.5 seconds must be a whole number of seconds"),
        (15, "interval must be a str or timedelta, got int"),
    ],
)
def test_invalid_interval(value: object, message: str) -> None:
    with pytest.raises(ScheduleError, match="^" + message.replace("(", r"\(")):
        every(value)  # type: ignore[arg-type]


def test_interval_labels_and_units() -> None:
    assert every("15m").expression == "every 15m"
    assert every("90m").expression == "every 1h30m"
    assert every("1h30m").interval == timedelta(minutes=90)
    assert every("30s").interval == timedelta(seconds=30)
    assert every("2w").interval == timedelta(weeks=2)
    assert every(timedelta(days=14)).expression == "every 2w"
    assert every(timedelta(days=1, hours=2)).expression == "every 1d2h"
    assert parse_schedule("every 1d").interval == timedelta(days=1)
    assert parse_schedule("Every 15m").expression == "every 15m"


def test_interval_anchors() -> None:
    # Sub-day intervals count from the Unix epoch by default: "15m" is on the quarter hour.
    assert every("15m").next_after(utc(2026, 5, 1, 10, 7)) == utc(2026, 5, 1, 10, 15)
    assert every("15m", tz=BERLIN).next_after(utc(2026, 5, 1, 10, 7)) == utc(2026, 5, 1, 10, 15)
    # An explicit start sets the phase, and nothing ticks before it.
    hourly = every("1h", start="2026-06-01T00:30", tz=BERLIN)
    assert hourly.next_after(utc(2026, 6, 1, 12, 40)) == utc(2026, 6, 1, 13, 30)
    assert hourly.next_after(utc(2020, 1, 1)) == utc(2026, 5, 31, 22, 30)
    assert every("1d", start="2026-06-01", tz=BERLIN).next_after(utc(2020, 1, 1)) == utc(
        2026, 5, 31, 22
    )
    # Whole-day intervals tick at local midnight; whole weeks on Mondays.
    assert every("1d", tz=NEW_YORK).next_after(utc(2026, 7, 1, 12)) == utc(2026, 7, 2, 4)
    assert every("1w").next_after(utc(2026, 3, 4)) == utc(2026, 3, 9)
    assert every("1w").next_after(utc(2026, 3, 4)).weekday() == 0
    # "2d" keeps its phase: every other day from its start.
    two_days = every("2d", start=local(BERLIN, 2026, 3, 27, 2, 30), tz=BERLIN)
    ticks = two_days.ticks(utc(2026, 3, 26), utc(2026, 4, 3))
    assert local_isos(ticks, BERLIN) == [
        "2026-03-27T02:30+01:00",
        "2026-03-29T03:00+02:00",
        "2026-03-31T02:30+02:00",
        "2026-04-02T02:30+02:00",
    ]


def test_every_day_from_a_start_in_the_repeated_hour() -> None:
    # 06:30 UTC is 01:30 EST, the second 01:30 of the fall-back night: the start itself ticks,
    # later days tick at the first 01:30 as usual.
    schedule = every("1d", start=utc(2026, 11, 1, 6, 30), tz=NEW_YORK)
    assert schedule.ticks(utc(2026, 1, 1), utc(2026, 11, 3, 12)) == [
        utc(2026, 11, 1, 6, 30),
        utc(2026, 11, 2, 6, 30),
        utc(2026, 11, 3, 6, 30),
    ]
    assert schedule.next_after(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6, 30)


def test_every_start_errors() -> None:
    with pytest.raises(ScheduleError, match="does not exist in Europe/Berlin"):
        every("1d", start="2026-03-29T02:30", tz=BERLIN)
    with pytest.raises(ScheduleError, match="is not a date or time"):
        every("1d", start="tomorrow")


def test_catchup_policies() -> None:
    cursor, now = utc(2026, 5, 1, 10), utc(2026, 5, 1, 13, 30)
    hourly = "0 * * * *"
    expected = [utc(2026, 5, 1, h) for h in (11, 12, 13)]
    assert cron(hourly, catchup="all").due(cursor, now) == expected
    assert cron(hourly, catchup="latest").due(cursor, now) == [utc(2026, 5, 1, 13)]
    assert cron(hourly).catchup == "latest"
    # "none": 13:00 is 30 minutes old, beyond the grace period, so it is skipped.
    assert cron(hourly, catchup="none").due(cursor, now) == []
    assert cron(hourly, catchup="none").due(cursor, now, grace=1800) == [utc(2026, 5, 1, 13)]
    assert cron(hourly, catchup="none").due(cursor, utc(2026, 5, 1, 13, 0, 30)) == [
        utc(2026, 5, 1, 13)
    ]
    assert cron(hourly, catchup="none").due(cursor, utc(2026, 5, 1, 13), grace=0) == [
        utc(2026, 5, 1, 13)
    ]
    for policy in ("all", "latest", "none"):
        schedule = cron(hourly, catchup=policy)
        assert schedule.due(utc(2026, 5, 1, 13), now) == []  # nothing new since the cursor
        assert schedule.due(now, cursor) == []  # cursor after now


def test_catchup_none_returns_every_tick_within_grace() -> None:
    schedule = every("15s", catchup="none")
    ticks = schedule.due(utc(2026, 1, 1), utc(2026, 5, 1, 12, 0, 50), grace=60)
    assert ticks == [utc(2026, 5, 1, 12, 0, s) for s in (0, 15, 30, 45)]


def test_latest_after_a_long_outage() -> None:
    minutely = cron("* * * * *", tz=BERLIN, catchup="latest")
    assert minutely.due(utc(2020, 1, 1), utc(2026, 5, 1, 12, 3, 30)) == [utc(2026, 5, 1, 12, 3)]
    yearly = cron("@yearly", tz=BERLIN)
    assert yearly.due(utc(2020, 1, 1), utc(2026, 5, 1)) == [utc(2025, 12, 31, 23)]
    assert yearly.due(utc(2026, 1, 1), utc(2026, 5, 1)) == []
    weekly = every("1w", catchup="latest")
    assert weekly.due(utc(2000, 1, 1), utc(2026, 3, 4)) == [utc(2026, 3, 2)]


def test_ticks_are_capped_by_limit() -> None:
    minutely = cron("* * * * *", catchup="all")
    after, until = utc(2026, 1, 1), utc(2026, 1, 11)  # 14 400 minutes
    ticks = minutely.ticks(after, until)
    assert len(ticks) == 10_000
    assert ticks[0] == utc(2026, 1, 1, 0, 1)
    assert ticks[-1] == after + timedelta(minutes=10_000)
    assert minutely.ticks(after, until, limit=3) == [utc(2026, 1, 1, 0, m) for m in (1, 2, 3)]
    assert len(minutely.due(after, until, limit=5)) == 5
    assert minutely.ticks(until, after) == []
    with pytest.raises(ScheduleError, match="limit must be at least 1"):
        minutely.ticks(after, until, limit=0)


def test_naive_datetimes_are_rejected() -> None:
    schedule = cron("@daily")
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="t must be a timezone-aware datetime"):
        schedule.next_after(naive)
    with pytest.raises(ValueError, match="after must be a timezone-aware"):
        schedule.ticks(naive, utc(2026, 2, 1))
    with pytest.raises(ValueError, match="until must be a timezone-aware"):
        schedule.ticks(utc(2026, 1, 1), naive)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        schedule.due(utc(2026, 1, 1), naive)
    with pytest.raises(ValueError, match="grace must not be negative"):
        schedule.due(utc(2026, 1, 1), utc(2026, 1, 2), grace=-1)


def test_time_zone_and_catchup_errors() -> None:
    with pytest.raises(ScheduleError, match=r"^unknown time zone 'Europe/Berln'$"):
        cron("@daily", tz="Europe/Berln")
    with pytest.raises(ScheduleError, match=r"^unknown time zone 'Europe'$"):
        every("1h", tz="Europe")
    with pytest.raises(ScheduleError, match=r"^unknown time zone ''$"):
        parse_schedule("@daily", tz="")
    with pytest.raises(
        ScheduleError, match=r"^catchup 'sometimes' must be one of 'all', 'latest', 'none'$"
    ):
        cron("@daily", catchup="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="catchup"):
        every("1h", catchup="All")  # type: ignore[arg-type]


def test_parse_schedule() -> None:
    daily = parse_schedule("  0 2 * * * ", tz=BERLIN)
    assert (daily.kind, daily.expression, daily.tz) == ("cron", "0 2 * * *", BERLIN)
    assert parse_schedule("@daily").expression == "@daily"
    interval = parse_schedule("every 15m", tz=NEW_YORK)
    assert (interval.kind, interval.interval, interval.tz) == (
        "interval",
        timedelta(minutes=15),
        NEW_YORK,
    )
    given = cron("@hourly", tz=BERLIN, name="hourly refresh")
    assert parse_schedule(given, tz="UTC") is given
    with pytest.raises(ScheduleError, match="expected a cron expression"):
        parse_schedule(15)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="invalid interval"):
        parse_schedule("every fortnight")


def test_schedule_value_semantics_and_describe() -> None:
    a = cron("0 2 * * *", tz=BERLIN, catchup="all", name="nightly")
    assert a == cron("0 2 * * *", tz=BERLIN, catchup="all", name="nightly")
    assert hash(a) == hash(cron("0 2 * * *", tz=BERLIN, catchup="all", name="nightly"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tz = "UTC"  # type: ignore[misc]
    assert a.describe() == {
        "kind": "cron",
        "expression": "0 2 * * *",
        "tz": BERLIN,
        "catchup": "all",
        "name": "nightly",
        "cron": "0 2 * * *",
    }
    b = every("1d", start="2026-01-01T05:00", tz=BERLIN)
    assert b.describe() == {
        "kind": "interval",
        "expression": "every 1d",
        "tz": BERLIN,
        "catchup": "latest",
        "name": None,
        "interval_seconds": 86400,
        "start": "2026-01-01T05:00:00+01:00",
    }
    json.dumps([a.describe(), b.describe(), every("15m").describe()])


def test_schedule_constructor_validates() -> None:
    assert Schedule("interval", "every 15m").interval == timedelta(minutes=15)
    with pytest.raises(ScheduleError, match="kind 'at' must be 'cron' or 'interval'"):
        Schedule("at", "noon")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="only for interval schedules"):
        Schedule("cron", "@daily", interval=timedelta(hours=1))
    with pytest.raises(ScheduleError, match="start must be a timezone-aware"):
        Schedule("interval", "every 1h", start=datetime(2026, 1, 1))


def test_cron_that_never_fires_again() -> None:
    # Leap days exist, so this fires; cronsim gives up only after 50 years without a match.
    leap = cron("0 0 29 2 *")
    assert leap.next_after(utc(2026, 3, 1)) == utc(2028, 2, 29)
