"""Automation settings on @pipeline: what is accepted, and the errors for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato import DefinitionError, pipeline, task
from legato.loader import load_project
from legato.partitions import daily, static
from legato.schedules import cron
from legato.triggers import nats_stream, on_file, on_success, redis_stream, webhook
from tests.helpers import make_project


@task
def work() -> int:
    return 1


def test_schedules_take_the_partitions_time_zone_and_get_names() -> None:
    @pipeline(
        partitions=daily(start="2026-01-01", tz="Europe/Berlin"),
        schedule=["0 2 * * *", cron("@hourly", name="hourly")],
        triggers=[webhook(), on_file("in/*.csv")],
        max_active_runs=1,
        priority=5,
    )
    def nightly() -> None:
        work()

    auto = nightly.automation
    assert [(s.name, s.tz) for s in auto.schedules] == [
        ("schedule-1", "Europe/Berlin"),
        ("hourly", "Europe/Berlin"),
    ]
    assert [t.name for t in auto.triggers] == ["webhook", "file"]
    assert (auto.max_active_runs, auto.priority, auto.tz) == (1, 5, "Europe/Berlin")
    assert nightly.snapshot()["automation"]["schedules"][0]["name"] == "schedule-1"


def test_cron_and_every_without_tz_run_in_the_pipelines_zone_unless_they_name_one() -> None:
    from datetime import UTC, datetime

    from legato.schedules import every

    @pipeline(
        schedule=[
            cron("0 2 * * *", catchup="all", name="nightly"),
            cron("0 2 * * *", tz="UTC", name="utc"),
            every("1d", start="2026-01-01T06:00", name="daily"),
            "0 2 * * *",
        ],
        tz="America/New_York",
    )
    def eastern() -> None:
        work()

    auto = eastern.automation
    assert [s.tz for s in auto.schedules] == [
        "America/New_York",
        "UTC",
        "America/New_York",
        "America/New_York",
    ]
    jan = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    nxt = [s.next_after(jan).isoformat() for s in auto.schedules]
    assert nxt == [
        "2026-01-11T07:00:00+00:00",  # 02:00 in New York (EST, UTC-5)
        "2026-01-11T02:00:00+00:00",
        "2026-01-11T11:00:00+00:00",  # 06:00 in New York
        "2026-01-11T07:00:00+00:00",
    ]
    assert auto.schedule("nightly").catchup == "all"

    @pipeline(partitions=daily(start="2026-01-01", tz="Asia/Tokyo"), schedule=cron("@daily"))
    def tokyo() -> None:
        work()

    (sched,) = tokyo.automation.schedules
    assert sched.next_after(jan).isoformat() == "2026-01-10T15:00:00+00:00"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "61 * * * *"}, r"pipeline 'bad': schedule: invalid cron expression"),
        ({"schedule": "0 2 * * * *"}, r"pipeline 'bad': schedule: .*5 fields"),
        ({"schedule": "0 2 * * *", "tz": "Europe/Berln"}, r"pipeline 'bad': tz: unknown time zone"),
        ({"max_active_runs": 0}, r"pipeline 'bad': max_active_runs"),
        ({"priority": "high"}, r"pipeline 'bad': priority"),
        ({"partitions": "daily"}, r"pipeline 'bad': partitions"),
        ({"triggers": [on_success("bad")]}, r"triggered by its own success"),
        ({"triggers": [webhook(), webhook()]}, r"two triggers are called 'webhook'"),
        ({"triggers": ["redis"]}, r"pipeline 'bad': triggers"),
    ],
)
def test_bad_automation_names_the_pipeline_and_the_field(
    kwargs: dict[str, object], message: str
) -> None:
    def bad() -> None:
        work()

    with pytest.raises(DefinitionError, match=message):
        pipeline(name="bad", **kwargs)(bad)  # type: ignore[call-overload]


def test_schedule_and_partition_constructors_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        cron("0 2 * * *", tz="Mars/Base")
    with pytest.raises(ValueError, match="unknown time zone"):
        daily(start="2026-01-01", tz="Nowhere/City")
    with pytest.raises(ValueError):
        static([])
    with pytest.raises(ValueError, match="batch > 1 needs param"):
        redis_stream("orders", batch=5)
    with pytest.raises(ValueError, match="max_wait"):
        nats_stream("orders.new", max_wait=0)


def test_an_unknown_pool_or_upstream_leaves_the_pipeline_out_with_a_clear_error(
    tmp_path: Path,
) -> None:
    code = """
from legato import pipeline, task
from legato.triggers import on_success

@task(pool="warehouse")
def load():
    return 1

@task
def other():
    return 2

@pipeline
def loads():
    load()

@pipeline(triggers=[on_success("nope")])
def follows():
    other()

@pipeline
def fine():
    other()
"""
    root = make_project(tmp_path / "p", code, extra="\n[pools]\ndb = 2\n")
    project = load_project(root)
    assert sorted(project.pipelines) == ["fine"]
    messages = " | ".join(e.message for e in project.errors)
    assert "pipeline 'loads': task 'load': pool 'warehouse' does not exist (pools: db)" in messages
    assert "pipeline 'follows': triggers: 'after-nope' waits for pipeline 'nope'" in messages
