"""The overview's statistics, aggregated by the store on both backends: runs per UTC hour,
pipeline and state, and exact duration percentiles per pipeline and day (PostgreSQL's
percentile_cont and SQLite's ranks give the same figures)."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from legato.domain.records import RunRecord
from legato.domain.states import RunState
from legato.store import stats_store
from legato.store.store import Store
from tests.helpers import timed_run

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, midnight UTC
WEEK = (T0, T0 + timedelta(days=7))


def add(
    store: Store,
    pipeline: str,
    created: datetime,
    state: RunState = RunState.SUCCEEDED,
    seconds: float = 60.0,
) -> RunRecord:
    """A run created at ``created``; started a second later and, if finished, ``seconds``
    after that."""
    return store.runs.create_run(timed_run(pipeline, created, state, seconds))


def test_runs_land_in_their_utc_hour_and_state(store: Store) -> None:
    at = T0 + timedelta(hours=5)
    add(store, "etl", at)  # the first instant of 05:00
    add(store, "etl", at + timedelta(minutes=59, seconds=59.999), RunState.FAILED)
    add(store, "sync", at + timedelta(minutes=30), RunState.FAILED)
    add(store, "etl", at + timedelta(hours=1), RunState.RUNNING)  # 06:00, the next hour
    # Made in another time zone (09:15 in Berlin), counted in its UTC hour.
    add(store, "etl", datetime(2026, 3, 2, 9, 15, tzinfo=ZoneInfo("Europe/Berlin")),
        RunState.QUEUED)
    add(store, "etl", T0 - timedelta(microseconds=1))  # before the window: left out
    add(store, "etl", WEEK[1])  # the window's end is exclusive
    got = [(h.hour, h.pipeline, h.state, h.count) for h in store.stats.runs_per_hour(*WEEK)]
    assert got == [
        ("2026-03-02 05", "etl", "failed", 1),
        ("2026-03-02 05", "etl", "succeeded", 1),
        ("2026-03-02 05", "sync", "failed", 1),
        ("2026-03-02 06", "etl", "running", 1),
        ("2026-03-02 08", "etl", "queued", 1),
    ]
    only_sync = store.stats.runs_per_hour(*WEEK, pipelines=["sync"])
    assert [(h.hour, h.state, h.count) for h in only_sync] == [("2026-03-02 05", "failed", 1)]
    assert store.stats.runs_per_hour(*WEEK, pipelines=[]) == []


def _inclusive(values: list[float], percent: int) -> float:
    """The reference: linear between the closest ranks, as PostgreSQL's percentile_cont."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def test_duration_percentiles_per_day_are_exact(store: Store) -> None:
    rng = random.Random(3)
    monday = [float(s) for s in range(1, 101)]  # 1..100 s: p50 50.5 s, p95 95.05 s
    rng.shuffle(monday)
    for i, secs in enumerate(monday):
        add(store, "etl", T0 + timedelta(minutes=i * 10), seconds=secs)
    tuesday = [round(rng.uniform(0.5, 900.0), 3) for _ in range(37)]
    for i, secs in enumerate(tuesday):
        add(store, "etl", T0 + timedelta(days=1, minutes=i * 5), seconds=secs)
    add(store, "etl", T0 + timedelta(days=2), seconds=42.0)  # one run: every percentile is it
    # Runs that did not succeed take no part in durations.
    add(store, "etl", T0 + timedelta(hours=3, seconds=7), RunState.FAILED, seconds=5000.0)
    add(store, "etl", T0 + timedelta(hours=4, seconds=7), RunState.CANCELED, seconds=7000.0)
    add(store, "etl", T0 + timedelta(hours=5, seconds=7), RunState.RUNNING)
    found = store.stats.durations(*WEEK)
    assert found.complete
    got = {d.day: d for d in found.by_day}
    assert sorted(got) == ["2026-03-02", "2026-03-03", "2026-03-04"]
    mon = got["2026-03-02"]
    assert mon.pipeline == "etl" and mon.count == 100
    assert mon.percentiles[50] == pytest.approx(50.5, abs=1e-3)
    assert mon.percentiles[95] == pytest.approx(95.05, abs=1e-3)
    assert mon.longest == pytest.approx(100.0, abs=1e-3)
    tue = got["2026-03-03"]
    assert tue.count == 37
    for p in (50, 95):
        assert tue.percentiles[p] == pytest.approx(_inclusive(tuesday, p), abs=1e-3)
    wed = got["2026-03-04"]
    assert wed.count == 1
    assert wed.percentiles == pytest.approx({50: 42.0, 95: 42.0}, abs=1e-3)
    assert wed.longest == pytest.approx(42.0, abs=1e-3)
    # Over the whole window: one group of all 138 succeeded runs.
    (week,) = found.overall
    assert (week.pipeline, week.day, week.count) == ("etl", None, 138)
    every = [*monday, *tuesday, 42.0]
    for p in (50, 95):
        assert week.percentiles[p] == pytest.approx(_inclusive(every, p), abs=1e-3)


def test_duration_percentiles_over_the_window_per_pipeline(store: Store) -> None:
    for i in range(20):
        add(store, "slow", T0 + timedelta(hours=i * 7), seconds=600.0 + i)
        add(store, "fast", T0 + timedelta(hours=i * 7, minutes=1), seconds=2.0 + i / 10)
    got = {d.pipeline: d for d in store.stats.durations(*WEEK).overall}
    assert set(got) == {"slow", "fast"} and all(d.day is None for d in got.values())
    assert got["slow"].count == 20
    assert got["slow"].percentiles[50] == pytest.approx(609.5, abs=1e-3)
    assert got["slow"].percentiles[95] == pytest.approx(618.05, abs=1e-3)
    assert got["fast"].longest == pytest.approx(3.9, abs=1e-3)
    scoped = store.stats.durations(*WEEK, pipelines=["fast"])
    assert [d.pipeline for d in scoped.overall] == ["fast"]
    assert {d.pipeline for d in scoped.by_day} == {"fast"}


def test_sqlite_reads_a_bounded_sample_of_each_day(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats_store, "SAMPLE_PER_DAY", 10)
    for i in range(10):  # Monday: exactly the sample's size
        add(sqlite_store, "etl", T0 + timedelta(hours=i), seconds=10.0)
    assert sqlite_store.stats.durations(*WEEK).complete
    # Tuesday: 15 runs, the first five slow; the sample holds the newest ten.
    for i in range(15):
        add(sqlite_store, "etl", T0 + timedelta(days=1, hours=i), seconds=500.0 if i < 5 else 20.0)
    found = sqlite_store.stats.durations(*WEEK)
    assert not found.complete
    tue = next(d for d in found.by_day if d.day == "2026-03-03")
    assert tue.count == 10 and tue.longest == pytest.approx(20.0, abs=1e-3)


def test_percentile_interpolates_between_the_closest_ranks() -> None:
    assert stats_store.percentile([5.0], 95) == 5.0
    assert stats_store.percentile([1.0, 2.0], 50) == 1.5
    assert stats_store.percentile([1.0, 2.0, 4.0], 50) == 2.0
    values = sorted(random.Random(9).uniform(0, 100) for _ in range(51))
    for p in (1, 50, 95, 99):
        assert stats_store.percentile(values, p) == pytest.approx(_inclusive(values, p))
    assert stats_store.percentile(values, 100) == values[-1]
