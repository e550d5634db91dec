"""The web UI's pages, rendered by the real app over a real project and store."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client

CODE = """
import datetime
from typing import Literal
from legato import pipeline, task
from legato.partitions import daily, multi, static

@task
def extract(limit: int) -> list[int]:
    print("extracting", limit)
    return list(range(limit))

@task
def load(rows: list[int], mode: str) -> int:
    if mode == "boom":
        raise ValueError("load refused the rows")
    return len(rows)

@pipeline
def etl(limit: int = 3, mode: Literal["append", "replace", "boom"] = "append",
        day: datetime.date | None = datetime.date(2026, 12, 1), verbose: bool = False,
        tags: list[str] = [], at: datetime.datetime = datetime.datetime(2026, 12, 1, 5, 30)):
    load(extract(limit), mode)

@task
def one() -> int:
    return 1

@pipeline(partitions=multi(date=daily("2024-01-01", end="2024-01-04"),
                           region=static(["eu", "us"])))
def regional():
    one()
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(make_project(tmp_path / "proj", CODE, workers=1)) as w:
        yield w


@pytest.fixture
def client(ws: Workspace) -> TestClient:
    client: TestClient = signed_client(ws)
    return client


def test_overview_lists_pipelines_with_recent_runs(ws: Workspace, client: TestClient) -> None:
    ok = door(ws).runs.run_pipeline("etl")
    bad = door(ws).runs.run_pipeline("etl", {"mode": "boom"})
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert 'href="/pipelines/etl"' in html and 'href="/pipelines/regional"' in html
    strip = html[html.index('data-pipeline="etl"') :]
    strip = strip[: strip.index("</tr>")]
    # Oldest to newest, left to right, each a link coloured by its state.
    assert re.findall(r'class="tick state-(\w+)" href="/runs/(\w+)"', strip) == [
        ("succeeded", ok.id),
        ("failed", bad.id),
    ]
    assert "No scheduler is running" in html


def test_pipeline_page_draws_the_dag_and_the_partitions_grid(client: TestClient) -> None:
    html = client.get("/pipelines/regional").text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="dag"' in html
    assert 'data-task="one"' in html
    # Two rows (regions) by a column per day, each cell one partition never run.
    rows = re.findall(r'<text class="row-label"[^>]*>(\w+)</text>', html)
    assert rows == ["eu", "us"]
    cells = re.findall(r'class="cell state-never_run" data-key="([^"]+)"', html)
    assert len(cells) == 6 and "2024-01-03|us" in cells  # the end is exclusive
    at = {k: c for k, c in re.findall(r'data-key="([^"]+)"[^>]* data-r="\d+" data-c="(\d+)"', html)}
    assert at["2024-01-01|eu"] == at["2024-01-01|us"] == "0" and at["2024-01-03|us"] == "2"
    etl = client.get("/pipelines/etl").text
    assert 'data-task="extract"' in etl and 'data-task="load"' in etl
    assert "backfill-form" not in etl  # not partitioned: no grid


def test_launcher_form_follows_the_param_types(client: TestClient) -> None:
    html = client.get("/pipelines/etl/launch").text

    def widget(name: str) -> str:
        m = re.search(rf'data-field="{name}" data-widget="(\w+)"', html)
        assert m, name
        return m.group(1)

    assert widget("limit") == "integer"
    assert widget("mode") == "select"
    assert widget("day") == "date"
    assert widget("verbose") == "checkbox"
    assert widget("tags") == "json"
    assert re.search(r'<option value="replace"\s*>replace</option>', html)
    assert 'id="f-limit" type="number" step="1" name="limit" value="3"' in html
    # Dates and times are shown in the form their inputs take (ISO), not as Python reprs.
    assert widget("at") == "datetime"
    assert re.search(r'id="f-day" type="date"[^>]* value="2026-12-01"', html), html
    assert re.search(r'id="f-at" type="datetime-local"[^>]* value="2026-12-01T05:30:00"', html)
    assert "datetime.date(" not in html
    regional = client.get("/pipelines/regional/launch").text
    assert 'name="partition"' in regional and '<option value="2024-01-03|us">' in regional


def test_run_page_shows_the_failed_task_log_and_actions(ws: Workspace, client: TestClient) -> None:
    run = door(ws).runs.run_pipeline("etl", {"mode": "boom", "limit": 2})
    html = client.get(f"/runs/{run.id}").text
    assert 'data-finished="true"' in html
    assert 'class="node state-failed" data-task="load"' in html
    assert 'class="node state-succeeded" data-task="extract"' in html
    assert 'class="bar outcome-failed"' in html  # the Gantt
    # The failed task's log is shown first, with its error.
    assert 'data-key="load/1"' in html
    assert "load refused the rows" in html
    assert f'data-post="/api/v1/runs/{run.id}/rerun"' in html
    assert "Cancel run" not in html
    extract_log = client.get(f"/runs/{run.id}?task=extract").text
    assert "extracting 2" in extract_log
    live = client.get(f"/runs/{run.id}/live").text
    assert "<html" not in live and 'class="node state-failed" data-task="load"' in live


def test_runs_list_filters_and_pages_by_url(ws: Workspace, client: TestClient) -> None:
    made = []
    for i in range(5):
        made.append(door(ws).runs.create_run("etl", {"limit": i}))
        time.sleep(0.002)  # run ids order runs by creation time to the millisecond
    first = client.get("/runs?pipeline=etl&state=queued&limit=2").text
    shown = re.findall(r'<a class="mono" href="/runs/(\w+)">', first)
    assert shown == [made[4].id, made[3].id]
    older = re.search(r'<a class="button next" href="([^"]+)"', first)
    assert older is not None
    url = older.group(1).replace("&amp;", "&")
    assert "pipeline=etl" in url and "state=queued" in url and "limit=2" in url
    second = client.get(url).text
    assert re.findall(r'<a class="mono" href="/runs/(\w+)">', second) == [made[2].id, made[1].id]
    assert client.get("/runs?state=failed").text.count('<a class="mono" href="/runs/') == 0


def test_unknown_things_are_404_pages(client: TestClient) -> None:
    for path in ("/pipelines/nope", "/runs/nope", "/backfills/nope", "/no/such/page"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "<h1>Not found</h1>" in page.text
    assert client.get("/api/v1/nope").json() == {"error": "Not Found", "field": None}


def test_backfill_and_queue_pages(ws: Workspace, client: TestClient) -> None:

    b = door(ws).automation.create_backfill("regional", keys=["2024-01-01|eu", "2024-01-02|us"])
    html = client.get("/backfills").text
    assert f'href="/backfills/{b.id}"' in html and "0/2" in html
    detail = client.get(f"/backfills/{b.id}").text
    assert "2024-01-02|us" in detail and "not started" in detail
    assert "keys 1 to 2 of 2" in detail and "next →" not in detail  # its keys, a page at a time
    queued = door(ws).runs.create_run("etl")
    q = client.get("/queue").text
    assert f'data-run="{queued.id}"' in q and '"to": "top"' in q
    assert client.get("/static/legato.js").status_code == 200
    assert client.get("/static/legato.css").status_code == 200


def test_pipeline_page_lists_refused_trigger_events_with_their_reasons(
    ws: Workspace, client: TestClient
) -> None:
    assert "Refused trigger events" not in client.get("/pipelines/etl").text
    auto = door(ws).automation
    auto.record_failed_event("etl", "orders", "1700000000000-0", "payload is not JSON: <oops>")
    auto.record_failed_event("etl", "orders", "1700000000000-1", "pipeline 'etl' has no param 'x'")
    page = client.get("/pipelines/etl").text
    assert "Refused trigger events" in page
    assert "1700000000000-0" in page and "1700000000000-1" in page
    assert "payload is not JSON: &lt;oops&gt;" in page
    assert page.index("1700000000000-1") < page.index("1700000000000-0")  # newest first
    assert "Refused trigger events" not in client.get("/pipelines/regional").text


def test_run_pages_and_static_files_refuse_path_traversal(
    ws: Workspace, client: TestClient
) -> None:
    (ws.config.root / "secret.txt").write_text("TOP-SECRET-CONTENT")
    for path in (
        "/runs/%2e%2e",
        "/runs/..%2F..%2Fsecret.txt/code",
        "/runs/%2Fetc%2Fpasswd/live",
        "/static/%2e%2e/pages.py",
        "/static/..%2Fpages.py",
        "/static/..%2F..%2F..%2F..%2Fsecret.txt",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "TOP-SECRET" not in r.text and "def mount" not in r.text and "root:" not in r.text
