"""Two schedulers ticking at once on one PostgreSQL store make each run once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.scheduler.tick import Scheduler
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

CODE = """
from legato import pipeline, task
from legato.partitions import daily, multi, static
from legato.schedules import cron

@task(in_process=True)
def work():
    return 1

@pipeline(schedule=cron("* * * * *", catchup="all"))
def every_minute():
    work()

@pipeline(partitions=multi(date=daily(start="2026-01-01"), region=static(["eu", "us", "apac"])),
          schedule="0 * * * *")
def hourly_regions():
    work()
"""

pytestmark = pytest.mark.postgres


def test_two_schedulers_on_one_postgres_store_make_each_run_once(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_DATABASE_URL", pg_url)
    root = make_project(tmp_path / "p", CODE)
    start = datetime(2026, 11, 20, 10, 0, 30, tzinfo=UTC)
    clocks = [ManualClock(start), ManualClock(start)]
    spaces = [Workspace(root, clock=c) for c in clocks]
    try:
        schedulers = [Scheduler(door(ws).automation) for ws in spaces]
        schedulers[0].tick(start)  # first sight: both start from here
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def ticking(i: int) -> None:
            try:
                for minute in range(1, 91):  # 90 minutes, both at the same instants
                    now = start + timedelta(minutes=minute)
                    clocks[i]._now = now
                    barrier.wait(timeout=30)
                    schedulers[i].tick(now)
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=ticking, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        runs = spaces[0].store.browse.list_runs(limit=None)
        keys = [r.run_key for r in runs]
        assert len(keys) == len(set(keys))
        minutely = [r for r in runs if r.pipeline == "every_minute"]
        assert len(minutely) == 90
        regional = sorted(r.partition or "" for r in runs if r.pipeline == "hourly_regions")
        # The 11:00 tick targets the day that closed last, once per region.
        assert regional == ["2026-11-19|apac", "2026-11-19|eu", "2026-11-19|us"]
    finally:
        for ws in spaces:
            ws.close()
