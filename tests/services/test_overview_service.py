"""The overview service: windows chosen from ``now`` to the hour, the rankings, and what a
scoped actor or a role without ``runs.read`` gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from legato.domain.states import RunState
from legato.services.actor import Actor
from legato.services.service_errors import Forbidden
from legato.services.workspace import Workspace
from tests.helpers import make_project, timed_run

CODE = """
from legato import pipeline, task

@task
def step() -> int:
    return 1

@pipeline
def alpha():
    step()

@pipeline
def beta():
    step()

@pipeline
def gamma():
    step()
"""
HOUR = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(make_project(tmp_path / "proj", CODE, workers=1)) as w:
        S, F = RunState.SUCCEEDED, RunState.FAILED
        for pipeline, created, state in [
            ("alpha", HOUR, F),  # the first instant of the 10:00 hour
            ("alpha", HOUR - timedelta(microseconds=1), S),  # the last one of 09:00
            ("beta", HOUR - timedelta(hours=2), F),
            ("beta", HOUR - timedelta(hours=2, minutes=1), F),
            ("gamma", HOUR - timedelta(hours=5), F),
            ("gamma", HOUR - timedelta(hours=5, minutes=1), F),
            ("gamma", HOUR - timedelta(hours=5, minutes=2), RunState.RUNNING),
        ]:
            w.store.runs.create_run(timed_run(pipeline, created, state, 10.0))
        yield w


def viewer(ws: Workspace, *scope: str) -> Actor:
    perms = ws.roles.permissions("viewer")
    return Actor.http_client("token:v", permissions=perms, role="viewer", scope=scope)


def test_the_current_hour_is_the_last_bar_whatever_the_zone_of_now(ws: Workspace) -> None:
    overview = ws.door(Actor.local_user()).overview
    # 10:00:00 UTC given as Berlin time: the 10:00 hour has begun and is the last bar.
    got = overview.figures(HOUR.astimezone(ZoneInfo("Europe/Berlin")))
    assert got.now == HOUR and got.now.tzinfo == UTC
    assert [b.start for b in got.last_day[-2:]] == [HOUR - timedelta(hours=1), HOUR]
    assert got.last_day[-1].counts == (("failed", 1),)
    assert got.last_day[-2].counts == (("succeeded", 1),)
    assert got.last_day[0].start == HOUR - timedelta(hours=23)
    assert got.last_week[0].start == HOUR - timedelta(hours=167)
    # A moment earlier, 10:00's run is in the future: left out, and 09:00 is the last bar.
    before = overview.figures(HOUR - timedelta(microseconds=1))
    assert before.last_day[-1].start == HOUR - timedelta(hours=1)
    assert sum(b.total for b in before.last_week) == 6


def test_failing_ranks_by_failures_then_rate(ws: Workspace) -> None:
    got = ws.door(Actor.local_user()).overview.figures(HOUR + timedelta(minutes=30))
    # beta and gamma failed twice; beta finished 2 of 2, gamma 2 of 2 with one still running.
    ranked = [(f.pipeline, f.failed, f.finished, f.runs) for f in got.failing]
    assert ranked == [("beta", 2, 2, 2), ("gamma", 2, 2, 3), ("alpha", 1, 2, 2)]


def test_a_scoped_viewer_sees_its_pipelines_only(ws: Workspace) -> None:
    got = ws.door(viewer(ws, "alpha")).overview.figures(HOUR + timedelta(minutes=30))
    assert sum(b.total for b in got.last_week) == 2
    assert [f.pipeline for f in got.failing] == ["alpha"]
    assert [s.pipeline for s in got.slowest] == ["alpha"]
    assert [t.pipeline for t in got.trends] == ["alpha"]


def test_a_role_without_runs_read_is_refused(ws: Workspace) -> None:
    nobody = Actor.http_client("token:none", role="none")
    with pytest.raises(Forbidden):
        ws.door(nobody).overview.figures(HOUR)
