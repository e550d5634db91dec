"""The pipeline page's partitions at scale: ten years of hours drawn as a map of a few hundred
cells that zooms from months to hours, two dimensions as rows by columns, a static set as a
paged table, and the filters by state and range, over a real project and store."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.security.roles import VIEWER
from legato.services.workspace import Workspace
from tests.helpers import make_project, signed_client, timed_run

#: Also served by tests/e2e/test_partitions_browser.py.
CODE = """
from legato import pipeline, task
from legato.partitions import daily, hourly, multi, static

@task(in_process=True)
def one() -> int:
    return 1

@pipeline(partitions=hourly(start="2015-01-01", tz="UTC"))
def many():
    one()

@pipeline(partitions=multi(store=static([f"s{i:02d}" for i in range(50)]),
                           date=daily("2025-01-01", end="2026-01-01")))
def stores():
    one()

@pipeline(partitions=static([f"k{i:03d}" for i in range(120)]))
def keyed():
    one()

@pipeline(partitions=hourly(start="2026-10-30", tz="America/New_York"))
def ny():
    one()
"""
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
#: Runs recorded straight into the store: (pipeline, partition, state).
RUNS = [
    ("many", "2026-03-07T05:00+00:00", RunState.FAILED),
    ("many", "2026-03-07T06:00+00:00", RunState.SUCCEEDED),
    ("many", "2016-02-01T00:00+00:00", RunState.SUCCEEDED),
    ("stores", "s03|2025-02-10", RunState.FAILED),
    ("keyed", "k005", RunState.FAILED),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("parts") / "proj"
    with Workspace(make_project(root, CODE), clock=ManualClock(NOW)) as ws:
        for n, (pipeline, key, state) in enumerate(RUNS):
            run = timed_run(pipeline, datetime(2026, 12, 1, n, tzinfo=UTC), state, 5.0)
            ws.store.runs.create_run(dataclasses.replace(run, partition=key))
        yield signed_client(ws)


def _cells(html: str) -> list[str]:
    return re.findall(r'<(?:a|g) class="cell[^"]*"[^>]*>', html)


def test_ten_years_of_hours_are_a_small_map_of_months(client: TestClient) -> None:
    r = client.get("/pipelines/many")
    assert r.status_code == 200
    assert len(r.content) < 300_000, len(r.content)
    html = r.text
    total = (NOW - datetime(2015, 1, 1, tzinfo=UTC)) // (NOW - NOW.replace(hour=11))
    assert f"{total} in all" in html and "1 failed" in html and "2 succeeded" in html
    assert 'data-granularity="month"' in html
    cells = _cells(html)
    assert len(cells) == 12 * 12  # 2015-01 to 2026-12
    # A month cell links to its zoom and is titled with its counts.
    march = re.search(r'<a class="cell" href="([^"]+)"[^>]*><title>2026-03: ([^<]+)</title>', html)
    assert march and "zoom=2026-03" in march.group(1)
    assert march.group(2) == "1 succeeded, 1 failed, 742 never run"
    # One failed hour of 744 still shows: no state is drawn narrower than 3 px of 18.
    cell = html[march.end() : html.index("</a>", march.end())]
    assert re.search(r'class="seg state-failed" x="[\d.]+" width="3"', cell), cell
    # Row labels are years, each a link to its zoom.
    years = re.findall(r'<a href="([^"]+)"><text class="row-label"[^>]*>(\d{4})</text>', html)
    assert [y for _, y in years] == [str(y) for y in range(2015, 2027)]
    assert "zoom=2016" in years[1][0]


def test_zooming_goes_from_days_to_hours(client: TestClient) -> None:
    year = client.get("/pipelines/many", params={"zoom": "2026"}).text
    assert 'data-granularity="day"' in year
    assert len(_cells(year)) == 340  # 2026-01-01 to 2026-12-06 (its first 12 hours)
    r = client.get("/pipelines/many", params={"zoom": "2026-03"})
    assert len(r.content) < 300_000, len(r.content)  # the most cells a zoom of hours has
    month = r.text
    assert 'data-granularity="hour"' in month and len(_cells(month)) == 31 * 24
    day = client.get("/pipelines/many", params={"zoom": "2026-03-07"}).text
    # Each hour alone: named by its key and state; crumbs lead back up.
    keys = re.findall(r'class="cell state-(\w+)" data-key="([^"]+)"', day)
    assert len(keys) == 24 and keys[5] == ("failed", "2026-03-07T05:00+00:00")
    assert keys[6][0] == "succeeded" and keys[7][0] == "never_run"
    crumbs = re.findall(r'<a href="/pipelines/many\?zoom=([\d-]+)#partitions">', day)
    assert crumbs[:2] == ["2026", "2026-03"]


def test_filters_by_state_list_only_the_matching_partitions(client: TestClient) -> None:
    html = client.get("/pipelines/many", params={"state": "failed"}).text
    listed = re.findall(r'<td class="mono">([^<]+)</td>', html)
    assert listed == ["2026-03-07T05:00+00:00"]
    # In the map, the other states are drawn blank: only the failed share is coloured.
    march = html[html.index("<title>2026-03:") :]
    march = march[: march.index("</a>")]
    assert "state-failed" in march and "state-succeeded" not in march and "state-other" in march
    missing = client.get(
        "/pipelines/many",
        params={"state": "missing", "from": "2026-03-07T00:00", "to": "2026-03-07T09:00"},
    ).text
    listed = re.findall(r'<td class="mono">([^<]+)</td>', missing)
    assert listed == [f"2026-03-07T{h:02d}:00+00:00" for h in (0, 1, 2, 3, 4, 7, 8, 9)]
    # The range narrows the map too: ten hours are ten cells, one partition each.
    assert len(_cells(missing)) == 10 and 'data-granularity="hour"' in missing


def test_a_wrong_filter_is_said_and_the_whole_range_still_drawn(client: TestClient) -> None:
    html = client.get("/pipelines/many", params={"from": "2014-01-01T00:00"}).text
    assert 'role="alert">' in html and "before the first partition" in html
    assert len(_cells(html)) == 144
    bad = client.get("/pipelines/many", params={"zoom": "2026-3"}).text
    assert "expected YYYY, YYYY-MM or YYYY-MM-DD" in bad
    future = client.get("/pipelines/many", params={"zoom": "2027"}).text
    assert "No partition here" in future and not _cells(future)


def test_two_dimensions_are_rows_by_columns(client: TestClient) -> None:
    r = client.get("/pipelines/stores")
    html = r.text
    assert len(r.content) < 300_000
    rows = re.findall(r'<text class="row-label"[^>]*>(s\d\d)</text>', html)
    assert rows == [f"s{i:02d}" for i in range(50)]
    assert 'data-granularity="month"' in html and len(_cells(html)) == 50 * 12
    feb = re.search(r'data-first="s03\|2025-02-01" data-last="s03\|2025-02-28" data-n="28" '
                    r'data-r="3" data-c="1"><title>2025-02 s03: 1 failed, 27 never run</title>',
                    html)
    assert feb, "the February cell of s03"
    r = client.get("/pipelines/stores", params={"zoom": "2025-02"})
    assert len(r.content) < 300_000, len(r.content)
    days = r.text
    assert len(_cells(days)) == 50 * 28 and 'data-granularity="day"' in days
    assert re.search(r'class="cell state-failed" data-key="s03\|2025-02-10"', days)


def test_static_keys_are_a_paged_table(client: TestClient) -> None:
    html = client.get("/pipelines/keyed").text
    assert "svg class=\"pmap\"" not in html
    listed = re.findall(r'<td class="mono">([^<]+)</td>', html)
    assert listed == [f"k{i:03d}" for i in range(50)]
    more = re.search(r'href="(/pipelines/keyed\?cursor=k049#partitions)"', html)
    assert more
    rest = client.get(more.group(1).split("#")[0]).text
    assert re.findall(r'<td class="mono">([^<]+)</td>', rest)[0] == "k050"
    failed = client.get("/pipelines/keyed", params={"state": "failed"}).text
    assert re.findall(r'<td class="mono">([^<]+)</td>', failed) == ["k005"]


def test_the_launcher_offers_the_newest_keys(client: TestClient) -> None:
    html = client.get("/pipelines/many/launch").text
    options = re.findall(r'<option value="([^"]+)">', html)
    assert len(options) == 500 and options[-1] == "2026-12-06T11:00+00:00"
    assert 'value="2026-12-06T11:00+00:00"' in html


def test_the_hour_a_fall_back_night_repeats_is_one_cell_of_two(client: TestClient) -> None:
    html = client.get("/pipelines/ny", params={"zoom": "2026-11-01"}).text
    cells = _cells(html)
    assert len(cells) == 24
    # No zoom into an hour: the cell holds both partitions, so a selection backfills both.
    assert '<g class="cell" data-first="2026-11-01T01:00-04:00" ' \
        'data-last="2026-11-01T01:00-05:00" data-n="2"' in html
    assert "zoom=2026-11-01T01" not in html


def test_a_role_that_may_not_read_partitions_sees_the_page_without_them(
    tmp_path: Path,
) -> None:
    reads = ", ".join(f'"{p}"' for p in sorted(VIEWER - {"partitions.read"}))
    root = make_project(tmp_path / "proj", CODE, extra=f"[roles]\nno_parts = [{reads}]\n")
    with Workspace(root, clock=ManualClock(NOW)) as ws:
        page = signed_client(ws, "no_parts").get("/pipelines/many")
        assert page.status_code == 200 and 'data-task="one"' in page.text
        assert 'id="partitions"' not in page.text
        assert 'id="partitions"' in signed_client(ws, "viewer").get("/pipelines/many").text
