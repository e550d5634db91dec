"""Partitioned runs: what a task's context says, and a scheduled date x region pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.scheduler.tick import Scheduler
from legato.services.service_errors import ServiceError
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

CODE = """
import json
import os

from legato import pipeline, task
from legato.partitions import daily, multi, static


@task
def record(ctx):
    with open(os.environ["MARKS"], "a") as fh:
        fh.write(json.dumps({
            "partition": ctx.partition,
            "keys": dict(ctx.partition_keys),
            "start": ctx.window_start.isoformat(),
            "end": ctx.window_end.isoformat(),
        }) + "\\n")


@pipeline(
    partitions=multi(date=daily(start="2026-10-01", tz="Europe/Berlin"),
                     region=static(["eu", "us"])),
    schedule="0 3 * * *",
)
def regional():
    record()
"""


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "marks.jsonl"
    monkeypatch.setenv("MARKS", str(path))
    return path


def test_context_has_the_partition_keys_and_its_window_on_a_25_hour_day(
    tmp_path: Path, marks: Path
) -> None:
    root = make_project(tmp_path / "p", CODE)
    with Workspace(root) as ws:
        run = door(ws).runs.run_pipeline("regional", partition="2026-10-25|us")
        assert run.state == RunState.SUCCEEDED
    seen = json.loads(marks.read_text())
    assert seen == {
        "partition": "2026-10-25|us",
        "keys": {"date": "2026-10-25", "region": "us"},
        "start": "2026-10-25T00:00:00+02:00",
        "end": "2026-10-26T00:00:00+01:00",  # Berlin falls back that night: 25 hours
    }


def test_a_partition_the_pipeline_does_not_have_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE)
    with Workspace(root) as ws, pytest.raises(ServiceError, match=r"regional.*partition"):
        door(ws).runs.create_run("regional", partition="2026-10-25|asia")


def test_a_scheduled_tick_makes_one_run_per_region_for_the_day_that_closed(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "p", CODE)
    clock = ManualClock(datetime(2026, 11, 20, 12, tzinfo=UTC))
    with Workspace(root, clock=clock) as ws:
        sched = Scheduler(door(ws).automation)
        sched.tick(clock())
        clock.advance(16 * 3600)  # 2026-11-21 04:00 UTC, past 03:00 in Berlin
        made = sched.tick(clock()).created
        assert sorted(r.partition or "" for r in made) == ["2026-11-20|eu", "2026-11-20|us"]
        assert {r.origin for r in made} == {"schedule:schedule"}


HOURS = """
from legato import pipeline, task
from legato.partitions import daily, hourly


@task
def work():
    return 1


@pipeline(partitions=hourly(start="2026-11-01", tz="Europe/Berlin"))
def hours():
    work()


@pipeline(partitions=daily(start="2026-11-01", tz="Europe/Berlin"))
def days():
    work()
"""


@pytest.mark.parametrize(
    ("pipeline", "key", "opens"),
    [
        ("hours", "2026-11-20T13:00+01:00", "2026-11-20T14:00:00+01:00"),  # the open hour
        ("days", "2026-11-20", "2026-11-21T00:00:00+01:00"),  # today, still open
        ("days", "2027-11-20", "2027-11-21T00:00:00+01:00"),  # next year
    ],
)
def test_run_submit_and_backfill_refuse_a_partition_that_does_not_exist_yet(
    tmp_path: Path, pipeline: str, key: str, opens: str
) -> None:
    root = make_project(tmp_path / "p", HOURS)
    clock = ManualClock(datetime(2026, 11, 20, 12, 30, tzinfo=UTC))  # 13:30 in Berlin
    with Workspace(root, clock=clock) as ws:
        d = door(ws)
        attempts = {
            "run": lambda: d.runs.run_pipeline(pipeline, partition=key),
            "create": lambda: d.runs.create_run(pipeline, partition=key),
            "submit": lambda: d.automation.submit(pipeline, partition=key),
            "backfill keys": lambda: d.automation.create_backfill(pipeline, keys=[key]),
            "backfill range": lambda: d.automation.create_backfill(
                pipeline, first=key, last=key
            ),
        }
        messages = {}
        for what, attempt in attempts.items():
            with pytest.raises(ServiceError) as caught:
                attempt()
            messages[what] = str(caught.value)
        assert d.catalog.runs().runs == ()  # nothing was recorded
        clock.advance((datetime.fromisoformat(opens) - clock()).total_seconds())
        assert d.runs.create_run(pipeline, partition=key).partition == key
    # One message everywhere, saying when the partition will exist.
    assert len(set(messages.values())) == 1, messages
    assert f"partition {key!r} does not exist yet" in messages["run"]
    assert f"it will exist at {opens}" in messages["run"]
