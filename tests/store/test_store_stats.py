"""The overview's statistics, aggregated by the store on both backends: runs per UTC hour and
state, failures per pipeline, and exact duration percentiles per pipeline and day."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from legato.domain.records import RunRecord
from legato.domain.states import RunState
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
    got = [(h.hour, h.state, h.count) for h in store.stats.runs_per_hour(*WEEK)]
    assert got == [
        ("2026-03-02 05", "failed", 2),
        ("2026-03-02 05", "succeeded", 1),
        ("2026-03-02 06", "running", 1),
        ("2026-03-02 08", "queued", 1),
    ]
    only_sync = store.stats.runs_per_hour(*WEEK, pipelines=["sync"])
    assert [(h.hour, h.state, h.count) for h in only_sync] == [("2026-03-02 05", "failed", 1)]
    assert store.stats.runs_per_hour(*WEEK, pipelines=[]) == []


def test_failures_per_pipeline(store: Store) -> None:
    for i, state in enumerate([RunState.FAILED] * 3 + [RunState.SUCCEEDED, RunState.RUNNING]):
        add(store, "flaky", T0 + timedelta(hours=i), state)
    add(store, "steady", T0 + timedelta(hours=1))
    add(store, "steady", T0 + timedelta(hours=2), RunState.CANCELED)
    add(store, "flaky", T0 - timedelta(days=1), RunState.FAILED)  # outside the window
    got = {f.pipeline: (f.runs, f.finished, f.failed) for f in store.stats.failures(*WEEK)}
    assert got == {"flaky": (5, 4, 3), "steady": (2, 2, 0)}


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
    add(store, "etl", T0 + timedelta(hours=3), RunState.FAILED, seconds=5000.0)
    add(store, "etl", T0 + timedelta(hours=4), RunState.CANCELED, seconds=7000.0)
    add(store, "etl", T0 + timedelta(hours=5), RunState.RUNNING)
    got = {d.day: d for d in store.stats.durations(*WEEK, by_day=True)}
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


def test_duration_percentiles_over_the_window_per_pipeline(store: Store) -> None:
    for i in range(20):
        add(store, "slow", T0 + timedelta(hours=i * 7), seconds=600.0 + i)
        add(store, "fast", T0 + timedelta(hours=i * 7, minutes=1), seconds=2.0 + i / 10)
    got = {d.pipeline: d for d in store.stats.durations(*WEEK, by_day=False)}
    assert set(got) == {"slow", "fast"} and all(d.day is None for d in got.values())
    assert got["slow"].count == 20
    assert got["slow"].percentiles[50] == pytest.approx(609.5, abs=1e-3)
    assert got["slow"].percentiles[95] == pytest.approx(618.05, abs=1e-3)
    assert got["fast"].longest == pytest.approx(3.9, abs=1e-3)
    scoped = store.stats.durations(*WEEK, by_day=False, pipelines=["fast"])
    assert [d.pipeline for d in scoped] == ["fast"]
