"""The overview page and ``GET /api/v1/overview``, over a real project and store on a manual
clock: runs made at known times land in the right hourly bars, the tables rank the
pipelines, and only signed-in readers see it."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.server.app import create_app
from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client, timed_run

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

CODE = """
from legato import pipeline, task

@task
def step() -> int:
    return 1

@pipeline
def ingest():
    step()

@pipeline
def report():
    step()

@pipeline
def flaky():
    step()
"""
STATES = {s.value for s in RunState}
NOW = datetime(2026, 3, 9, 10, 20, tzinfo=UTC)  # a Monday; the current hour is 10:00


def add(ws: Workspace, pipeline: str, created: datetime, state: RunState, seconds: float) -> None:
    ws.store.runs.create_run(timed_run(pipeline, created, state, seconds))


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    clock = ManualClock(NOW)
    with Workspace(make_project(tmp_path / "proj", CODE, workers=1), clock=clock) as w:
        S, F = RunState.SUCCEEDED, RunState.FAILED
        this_hour = NOW.replace(minute=0)
        add(w, "ingest", this_hour + timedelta(minutes=5), S, 30)  # the last bar
        add(w, "ingest", this_hour + timedelta(minutes=19), RunState.RUNNING, 0)
        add(w, "flaky", this_hour - timedelta(hours=3, minutes=-1), F, 5)  # 07:00
        add(w, "flaky", this_hour - timedelta(hours=3, minutes=-50), F, 5)
        add(w, "flaky", this_hour - timedelta(hours=3, minutes=-59), S, 5)
        # 11:00 yesterday is the day's first bar; 10:59 yesterday is in the week only.
        add(w, "report", this_hour - timedelta(hours=23), S, 600)
        add(w, "report", this_hour - timedelta(hours=23, seconds=1), S, 1200)
        add(w, "report", this_hour - timedelta(days=2), F, 3)
        # Before the week (168 hours): counted nowhere.
        add(w, "flaky", this_hour - timedelta(hours=168, seconds=1), F, 5)
        yield w


def test_page_draws_a_bar_per_hour_titled_with_its_runs(ws: Workspace) -> None:
    client = signed_client(ws, "viewer")
    page = client.get("/overview")
    assert page.status_code == 200, page.text
    html = page.text
    assert re.search(r'<nav>\s*<a href="/overview" class="on">Overview</a>', html)
    day = _chart(html, "day")
    week = _chart(html, "week")
    assert len(re.findall(r'<g class="hour"', day)) == 24
    assert len(re.findall(r'<g class="hour"', week)) == 168
    assert _bars(day) == {
        "2026-03-08T11": ("1", "Sun 2026-03-08 11:00 to 12:00 UTC: 1 run (1 succeeded)"),
        "2026-03-09T07": ("3", "Mon 2026-03-09 07:00 to 08:00 UTC: 3 runs (1 succeeded, 2 failed)"),
        "2026-03-09T10": (
            "2", "Mon 2026-03-09 10:00 to 11:00 UTC: 2 runs (1 succeeded, 1 running)"
        ),
    }
    week_bars = _bars(week)
    assert set(week_bars) == {"2026-03-07T10", "2026-03-08T10", *_bars(day)}
    assert week_bars["2026-03-07T10"][1].endswith(": 1 run (1 failed)")
    # The 07:00 bar stacks a succeeded and a failed segment, each sized by its count.
    seven = day[day.index('data-hour="2026-03-09T07"') :]
    seven = seven[: seven.index("</g>")]
    assert re.findall(r'class="seg state-(\w+)" data-state="\w+" data-count="(\d+)"', seven) == [
        ("succeeded", "1"),
        ("failed", "2"),
    ]
    assert "<title>Mon 2026-03-09 09:00 to 10:00 UTC: no runs</title>" in day


def test_page_ranks_slowest_and_failing_pipelines(ws: Workspace) -> None:
    html = signed_client(ws, "viewer").get("/overview").text
    slowest = _section(html, "slowest")
    assert re.findall(r'<tr data-pipeline="(\w+)">', slowest) == ["report", "ingest", "flaky"]
    # report: 600 s and 1200 s: p50 900 s (15m), p95 1170 s (19m30s), longest 20m.
    row = slowest[slowest.index('data-pipeline="report"') :]
    cells = re.findall(r"<td>([^<]*)</td>", row[: row.index("</tr>")])
    assert cells == ["2", "15m", "19m30s", "20m"]
    failing = _section(html, "failing")
    assert re.findall(r'<tr data-pipeline="(\w+)">', failing) == ["flaky", "report"]
    flaky = failing[failing.index('data-pipeline="flaky"') :]
    assert re.findall(r"<td>([^<]*)</td>", flaky[: flaky.index("</tr>")])[:3] == ["2", "3", "67%"]
    trends = _section(html, "durations")
    assert re.findall(r'<figure class="trend" data-pipeline="(\w+)">', trends) == [
        "flaky", "ingest", "report",
    ]
    assert "Sun 2026-03-08: 2 succeeded, p50 15m, p95 19m30s" in trends


def test_api_gives_the_same_figures(ws: Workspace) -> None:
    body = signed_client(ws, "viewer").get("/api/v1/overview").json()
    assert body["now"].startswith("2026-03-09T10:20:00")
    assert len(body["last_day"]) == 24 and len(body["last_week"]) == 168
    assert body["last_day"][-1] == {
        "start": "2026-03-09T10:00:00Z", "total": 2, "states": {"succeeded": 1, "running": 1},
    }
    assert body["last_day"][0]["start"] == "2026-03-08T11:00:00Z"
    assert sum(h["total"] for h in body["last_week"]) == 8
    assert body["durations_complete"] is True
    assert [s["pipeline"] for s in body["slowest"]] == ["report", "ingest", "flaky"]
    report = body["slowest"][0]
    assert (report["runs"], report["p50"], report["p95"]) == (2, pytest.approx(900, abs=0.01),
                                                              pytest.approx(1170, abs=0.01))
    assert [(f["pipeline"], f["failed"], f["finished"]) for f in body["failing"]] == [
        ("flaky", 2, 3), ("report", 1, 3),
    ]
    trend = next(t for t in body["trends"] if t["pipeline"] == "report")
    assert [d["day"] for d in trend["days"]] == [f"2026-03-{d:02d}" for d in range(3, 10)]
    assert [d["runs"] for d in trend["days"]] == [0, 0, 0, 0, 0, 2, 0]
    assert trend["days"][-1]["p50"] is None


def test_the_documented_answer_has_the_api_shape(ws: Workspace) -> None:
    body = signed_client(ws, "viewer").get("/api/v1/overview").json()
    text = (Path(__file__).parents[2] / "docs" / "monitoring.md").read_text(encoding="utf-8")
    section = text[text.index("## Overview page") :]
    example = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))  # type: ignore[union-attr]

    def shape(value: object) -> object:
        if isinstance(value, dict):
            # Run states are data, not fields: any of them may appear.
            return {k: shape(v) for k, v in value.items() if k not in STATES}
        if isinstance(value, list):
            return [shape(value[0])] if value else []
        return type(value).__name__ if value is not None else "float"

    assert shape(example) == shape(body)
    report = next(t for t in body["trends"] if t["pipeline"] == "report")
    documented = example["trends"][0]["days"][0]
    found = next(d for d in report["days"] if d["day"] == documented["day"])
    assert found == pytest.approx(documented, abs=1e-3)
    assert example["slowest"][0] == pytest.approx(body["slowest"][0])


def test_anonymous_is_sent_to_sign_in_and_the_api_refuses(ws: Workspace) -> None:
    door(ws).project.settings()
    client = TestClient(create_app(door(ws), allowed_hosts=["testserver"]))
    page = client.get("/overview", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/signin?next=")
    assert client.get("/api/v1/overview").status_code == 401


def _chart(html: str, window: str) -> str:
    start = html.index(f'<div class="chart" data-window="{window}">')
    return html[start : html.index("</svg>", start)]


def _bars(chart: str) -> dict[str, tuple[str, str]]:
    """The hours with runs: their total and hover title."""
    found = re.findall(
        r'<g class="hour" data-hour="([\dT-]+)" data-total="(\d+)"><title>([^<]*)</title>', chart
    )
    return {hour: (total, title) for hour, total, title in found if total != "0"}


def _section(html: str, name: str) -> str:
    start = html.index(f'id="{name}"')
    return html[start : html.index("</section>", start)]
