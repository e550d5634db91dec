"""Partitions a page or a summary at a time: filtered by state and key range, paged by cursor,
counted by state per day, with the ranges of failed and missing keys; the counts equal a
direct count of the partitions' newest runs. Through real runs, once per store backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.definitions.partitioning import PartitionSet, daily, hourly, multi, static
from legato.services.partition_views import GRANULARITIES, buckets, time_label
from legato.services.service_errors import NotFoundError, ServiceError
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

#: Hourly partitions from 2026-03-01 00:00: at NOW (03-03 12:00) 60 of them exist.
CODE = """
from legato import pipeline, task
from legato.partitions import hourly, static


@task(in_process=True)
def load(fail: bool) -> int:
    if fail:
        raise ValueError("bad hour")
    return 1


@pipeline(partitions=hourly(start="2026-03-01", tz="UTC"))
def hours(fail: bool = False):
    load(fail)


@pipeline
def plain():
    load(False)


@pipeline(partitions=static(["eu", "us"]))
def regions():
    load(False)
"""
NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def ws(backend_ws: Workspace) -> Workspace:
    return backend_ws


def _hour(day: int, hour: int) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00+00:00"


def _runs(ws: Workspace) -> dict[str, str]:
    """The runs made: day 1 hours 0-5 succeeded, hours 6-7 failed, hour 8 failed and then
    succeeded, day 2 hour 10 failed; the rest never run."""
    d = door(ws)
    clock = ws.clock
    assert isinstance(clock, ManualClock)
    made = {}
    for key, fail in [
        *((_hour(1, h), h >= 6) for h in range(9)), (_hour(1, 8), False), (_hour(2, 10), True),
    ]:
        made[key] = d.runs.run_pipeline("hours", {"fail": fail}, partition=key).state.value
        clock.advance(1)  # a partition's newest run is the one made last
    return made


def test_the_summary_counts_states_and_names_the_failed_and_missing_ranges(
    ws: Workspace,
) -> None:
    made = _runs(ws)
    s = door(ws).partitions.summary("hours", granularity="day")
    assert s.total == 60  # 2 days and 12 hours
    assert s.counts == {"succeeded": 7, "failed": 3, "never run": 50}
    # Equal to a direct count of each partition's newest run.
    direct: dict[str, int] = {}
    for state in made.values():
        direct[state] = direct.get(state, 0) + 1
    assert {k: v for k, v in s.counts.items() if k != "never run"} == direct
    assert [(r.first, r.last, r.count) for r in s.failed] == [
        (_hour(1, 6), _hour(1, 7), 2), (_hour(2, 10), _hour(2, 10), 1),
    ]
    assert [(r.first, r.last, r.count) for r in s.missing] == [
        (_hour(1, 9), _hour(2, 9), 25), (_hour(2, 11), _hour(3, 11), 25),
    ]
    assert [(b.label, b.first, b.last, b.counts) for b in s.buckets] == [
        ("2026-03-01", _hour(1, 0), _hour(1, 23),
         {"succeeded": 7, "failed": 2, "never run": 15}),
        ("2026-03-02", _hour(2, 0), _hour(2, 23), {"never run": 23, "failed": 1}),
        ("2026-03-03", _hour(3, 0), _hour(3, 11), {"never run": 12}),
    ]
    day2 = door(ws).partitions.summary("hours", first=_hour(2, 0), last=_hour(2, 23))
    assert day2.total == 24 and day2.counts == {"never run": 23, "failed": 1}
    # The newest ranges only, when asked for fewer, and how many there are in all.
    newest = door(ws).partitions.summary("hours", ranges=1)
    assert [(r.first, r.count) for r in newest.failed] == [(_hour(2, 10), 1)]
    assert [(r.first, r.count) for r in newest.missing] == [(_hour(2, 11), 25)]
    assert (newest.failed_ranges, newest.missing_ranges) == (2, 2)
    assert newest.counts == s.counts
    none = door(ws).partitions.summary("hours", ranges=0)
    assert (none.failed, none.missing, none.failed_ranges) == ((), (), 2)


def test_summaries_follow_new_runs_of_windows_counted_before(ws: Workspace) -> None:
    _runs(ws)
    d = door(ws)
    # Every key of day 1's first nine hours ran: later summaries count that window's states
    # again but not whether each key ran.
    nine = {"first": _hour(1, 0), "last": _hour(1, 8)}
    assert d.partitions.summary("hours", **nine).counts == {"succeeded": 7, "failed": 2}
    d.runs.run_pipeline("hours", {"fail": True}, partition=_hour(1, 0))
    again = d.partitions.summary("hours", **nine)
    assert again.counts == {"succeeded": 6, "failed": 3}
    assert [(r.first, r.count) for r in again.failed] == [(_hour(1, 0), 1), (_hour(1, 6), 2)]
    # A key never run gets its first run: the summary sees it.
    day2 = {"first": _hour(2, 0), "last": _hour(2, 23)}
    assert d.partitions.summary("hours", **day2).counts == {"never run": 23, "failed": 1}
    d.runs.run_pipeline("hours", {}, partition=_hour(2, 0))
    assert d.partitions.summary("hours", **day2).counts == {
        "never run": 22, "failed": 1, "succeeded": 1,
    }


def test_pages_filter_by_state_and_range_and_follow_the_cursor(ws: Workspace) -> None:
    _runs(ws)
    parts = door(ws).partitions
    failed = parts.page("hours", states=["failed"])
    assert [(p.key, p.state) for p in failed.partitions] == [
        (_hour(1, 6), "failed"), (_hour(1, 7), "failed"), (_hour(2, 10), "failed"),
    ]
    assert failed.total == 3 and failed.next_cursor is None
    assert all(p.run_id for p in failed.partitions)
    # "missing" is never run; pages of 20 follow one another without gap or overlap.
    seen: list[str] = []
    cursor = None
    while True:
        page = parts.page("hours", states=["missing", "failed"], first=_hour(1, 7),
                          cursor=cursor, limit=20)
        assert page.total == 52  # 50 missing, 2 failed from 01T07 on
        seen += [p.key for p in page.partitions]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 52 == len(set(seen)) and seen == sorted(seen)
    assert seen[0] == _hour(1, 7) and _hour(1, 8) not in seen  # 01T08 succeeded at last
    static_page = parts.page("regions")
    assert [(p.key, p.state) for p in static_page.partitions] == [
        ("eu", "never run"), ("us", "never run"),
    ]


def test_wrong_filters_say_what_is_wrong(ws: Workspace) -> None:
    parts = door(ws).partitions
    with pytest.raises(ServiceError, match="unknown partition state 'broken'"):
        parts.page("hours", states=["broken"])
    with pytest.raises(ServiceError, match="no such partition"):
        parts.page("hours", first="2026-13-01T00:00")
    with pytest.raises(ServiceError, match="before it starts"):
        parts.page("hours", first=_hour(2, 0), last=_hour(1, 0))
    with pytest.raises(ServiceError, match="cursor"):
        parts.page("hours", cursor="eu")
    with pytest.raises(ServiceError, match="no time partitions"):
        parts.summary("regions", granularity="day")
    with pytest.raises(ServiceError, match="granularity must be one of"):
        parts.summary("hours", granularity="week")
    with pytest.raises(NotFoundError, match="has no partitions"):
        parts.summary("plain")


@pytest.mark.parametrize(
    "parts",
    [
        hourly(start="2026-03-20", tz="Europe/Berlin"),  # a 23-hour day among them
        daily(start="2025-11-20"),
        multi(date=daily(start="2026-01-25"), region=static(["eu", "us"])),
        multi(region=static(["eu", "us", "ap"]), hour=hourly(start="2026-03-28", tz="UTC")),
    ],
)
@pytest.mark.parametrize("granularity", ["year", "month", "day"])
def test_buckets_hold_each_key_whose_window_starts_in_them(
    parts: PartitionSet, granularity: str
) -> None:
    keys = parts.keys(datetime(2026, 4, 2, tzinfo=UTC))
    states = [("failed", "succeeded", "never run")[i % 7 % 3] for i in range(len(keys))]
    fmt = GRANULARITIES[granularity]
    want: dict[str, dict[str, int]] = {}
    for key, state in zip(keys, states, strict=True):  # each key's window, one by one
        start = parts.get(key).start
        assert start is not None
        counts = want.setdefault(start.strftime(fmt), {})
        counts[state] = counts.get(state, 0) + 1
    got = buckets(keys, states, time_label(parts, granularity))
    assert [(b.label, b.counts) for b in got] == sorted(want.items())
    assert sum(sum(b.counts.values()) for b in got) == len(keys)
    assert got[0].first == keys[0] and got[-1].last == keys[-1]


def test_a_grid_counts_states_per_bucket_within_a_time(ws: Workspace) -> None:
    _runs(ws)
    parts = door(ws).partitions
    day1 = parts.grid("hours", granularity="hour", within="2026-03-01")
    assert day1.total == 24 and len(day1.rows) == 1 and day1.rows[0].label == ""
    cells = day1.rows[0].buckets
    assert [b.label for b in cells] == [f"2026-03-01T{h:02d}" for h in range(24)]
    assert [next(iter(b.counts)) for b in cells[:10]] == ["succeeded"] * 6 + ["failed"] * 2 + [
        "succeeded", "never run",
    ]
    assert (cells[7].first, cells[7].last) == (_hour(1, 7), _hour(1, 7))
    months = parts.grid("hours", granularity="day")
    assert [(b.label, sum(b.counts.values())) for b in months.rows[0].buckets] == [
        ("2026-03-01", 24), ("2026-03-02", 24), ("2026-03-03", 12),
    ]
    assert months.counts == {"succeeded": 7, "failed": 3, "never run": 50}
    # within narrows pages and summaries the same way
    page = parts.page("hours", states=["failed"], within="2026-03-02")
    assert [p.key for p in page.partitions] == [_hour(2, 10)]
    assert parts.summary("hours", within="2026-03-03T05").total == 1
    with pytest.raises(ServiceError, match="within '2026-3'"):
        parts.page("hours", within="2026-3")
    with pytest.raises(ServiceError, match="no time partitions"):
        parts.grid("regions", granularity="day")


def test_a_two_dimensional_grid_has_a_row_per_static_key(tmp_path: Path) -> None:
    code = """
from legato import pipeline, task
from legato.partitions import daily, multi, static

@task(in_process=True)
def load() -> int:
    return 1

@pipeline(partitions=multi(store=static(["s2", "s1", "s3"]), date=daily("2026-01-01")))
def stores():
    load()
"""
    with Workspace(make_project(tmp_path / "proj", code), clock=ManualClock(NOW)) as ws:
        d = door(ws)
        made = d.runs.run_pipeline("stores", partition="s1|2026-02-03")
        grid = d.partitions.grid("stores", granularity="month")
        assert [r.label for r in grid.rows] == ["s2", "s1", "s3"]  # the dimension's order
        s1 = grid.rows[1].buckets
        assert [(b.label, b.first, b.last) for b in s1] == [
            ("2026-01", "s1|2026-01-01", "s1|2026-01-31"),
            ("2026-02", "s1|2026-02-01", "s1|2026-02-28"),
            ("2026-03", "s1|2026-03-01", "s1|2026-03-02"),
        ]
        assert s1[1].counts == {"never run": 27, made.state.value: 1}
        assert grid.rows[0].buckets[1].counts == {"never run": 28}
        assert grid.total == 3 * 61


def test_buckets_follow_local_time_across_a_fall_back_night(tmp_path: Path) -> None:
    code = """
from legato import pipeline, task
from legato.partitions import hourly

@task(in_process=True)
def load() -> int:
    return 1

@pipeline(partitions=hourly(start="2026-10-30", tz="America/New_York"))
def ny():
    load()
"""
    at = datetime(2026, 11, 3, tzinfo=UTC)
    with Workspace(make_project(tmp_path / "proj", code), clock=ManualClock(at)) as ws:
        parts = door(ws).partitions
        night = parts.grid("ny", granularity="hour", within="2026-11-01")
        assert night.total == 25  # the 01:00 hour twice
        one = next(b for b in night.rows[0].buckets if b.label == "2026-11-01T01")
        assert (one.first, one.last) == ("2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00")
        assert one.counts == {"never run": 2}
        days = parts.summary("ny", granularity="day")
        assert [(b.label, sum(b.counts.values())) for b in days.buckets] == [
            ("2026-10-30", 24), ("2026-10-31", 24), ("2026-11-01", 25), ("2026-11-02", 19),
        ]


def test_runs_of_keys_a_changed_definition_no_has_are_not_counted(tmp_path: Path) -> None:
    code = """
from legato import pipeline, task
from legato.partitions import hourly

@task(in_process=True)
def load() -> int:
    return 1

@pipeline(partitions=hourly(start="2026-03-01", tz="{tz}"))
def hours():
    load()
"""
    root = tmp_path / "proj"
    with Workspace(make_project(root, code.format(tz="UTC")), clock=ManualClock(NOW)) as ws:
        door(ws).runs.run_pipeline("hours", partition=_hour(1, 5))
        assert door(ws).partitions.summary("hours").counts["succeeded"] == 1
    # Another zone: the old key sorts among the new ones ("...T05:00+00:00" < "...T05:00+01:00")
    # but is none of them.
    with Workspace(make_project(root, code.format(tz="Etc/GMT-1")), clock=ManualClock(NOW)) as ws:
        parts = door(ws).partitions
        s = parts.summary("hours", granularity="day")
        assert s.counts == {"never run": s.total}
        assert [(r.first, r.count) for r in s.missing] == [("2026-03-01T00:00+01:00", s.total)]
        assert all(set(b.counts) == {"never run"} for b in s.buckets)
        grid = parts.grid("hours", granularity="hour", within="2026-03-01")
        assert grid.counts == {"never run": 24}
