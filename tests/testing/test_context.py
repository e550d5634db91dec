"""A task's plain function called alone: a context built by hand, resources by keyword."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from legato import Context, pipeline, task
from legato.partitions import daily
from legato.testing import build_context


@task
def opening_hours(ctx: Context, hours: int) -> dict[str, object]:
    ctx.log.info("%s for %s", ctx.task, ctx.partition)
    assert ctx.window_start is not None and ctx.window_end is not None
    return {
        "day": ctx.partition_keys["date"],
        "opens": ctx.window_start.replace(hour=hours),
        "attempt": ctx.attempt,
        "params": dict(ctx.params),
    }


@pipeline(partitions=daily(start="2026-01-01", tz="Europe/Berlin"))
def hours(open_at: int = 9):
    opening_hours(open_at)


def test_a_context_for_a_partition_of_a_pipeline(caplog: pytest.LogCaptureFixture) -> None:
    ctx = build_context(
        opening_hours, pipeline=hours, partition="2026-03-29", params={"open_at": 9}, attempt=2
    )
    with caplog.at_level(logging.INFO, logger="legato.task"):
        out = opening_hours.fn(ctx, 9)
    assert out == {
        "day": "2026-03-29",
        "opens": datetime(2026, 3, 29, 9, tzinfo=ZoneInfo("Europe/Berlin")),
        "attempt": 2,
        "params": {"open_at": 9},
    }
    assert ctx.window_end is not None and ctx.window_end.day == 30
    assert "opening_hours for 2026-03-29" in caplog.text


def test_a_partition_the_pipeline_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="2025-12-31"):
        build_context(opening_hours, pipeline=hours, partition="2025-12-31")


@task
def save_rows(rows: list[tuple[str, int]], warehouse: sqlite3.Connection) -> int:
    """Its ``warehouse`` is a resource: the pipeline's call leaves it to the run to fill."""
    with warehouse:
        warehouse.executemany("insert into sales values (?, ?)", rows)
    return len(rows)


def test_a_resource_is_passed_by_keyword_to_the_plain_function(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "warehouse.db")
    db.execute("create table sales (day text, orders int)")
    assert save_rows.fn([("2026-11-20", 3)], warehouse=db) == 1
    assert db.execute("select * from sales").fetchall() == [("2026-11-20", 3)]
    db.close()
