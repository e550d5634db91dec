"""A run of many look-alike tasks on its page: the graph folds them into one box that expands
on demand, the task table and the timeline come a page at a time, filtered, failed first, and
live changes send what changed since the event the page has."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from legato.services.workspace import Workspace
from tests.helpers import door, fan_code, make_project, signed_client

LEAVES = 30
CODE = fan_code(LEAVES, 17)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(make_project(tmp_path / "proj", CODE, workers=2)) as w:
        yield w


@pytest.fixture
def run_id(ws: Workspace) -> str:
    run = door(ws).runs.run_pipeline("fan", {})
    assert run.state == "failed"
    return run.id


@pytest.fixture
def client(ws: Workspace) -> TestClient:
    return signed_client(ws)  # type: ignore[no-any-return]


def rows(html: str) -> list[str]:
    return re.findall(r'<tbody class="task" data-task="([^"]+)">', html)


def test_the_leaves_are_one_box_counted_by_state_that_expands(
    client: TestClient, run_id: str
) -> None:
    html = client.get(f"/runs/{run_id}").text
    box = re.search(r'<g class="node state-failed group" data-group="leaf" data-count="(\d+)">'
                    r"<title>([^<]*)</title>", html)
    assert box is not None, html
    assert box.group(1) == str(LEAVES)
    assert "1 failed" in box.group(2) and f"{LEAVES - 1} succeeded" in box.group(2)
    assert 'data-task="leaf_5"' not in html.split('<section id="timeline">')[0]
    # The box links to the page with the group expanded; that page draws every leaf.
    assert f'href="/runs/{run_id}?expand=leaf#graph"' in html
    expanded = client.get(f"/runs/{run_id}?expand=leaf").text
    graph = expanded.split('<section id="timeline">')[0]
    assert 'data-group="leaf"' not in graph
    assert graph.count('<g class="node state-succeeded" data-task="leaf') == LEAVES - 1
    assert f'href="/runs/{run_id}#graph" data-fold="leaf"' in graph


def test_the_table_pages_failed_first_and_filters_by_state_and_name(
    client: TestClient, run_id: str
) -> None:
    first = client.get(f"/runs/{run_id}?limit=10").text.split('<section id="tasks">')[1]
    shown = rows(first)
    assert len(shown) == 10
    assert shown[0] == "leaf_18"  # the failed one (i == 17) comes first
    assert "noop_2" not in shown  # the join, upstream_failed, is not among the first ten
    more = re.search(r'<a class="more" href="([^"]+)" data-more="([^"]+)">', first)
    assert more is not None
    assert more.group(1) == f"/runs/{run_id}?offset=10&amp;limit=10#tasks"
    following = client.get(more.group(2).replace("&amp;", "&")).text
    assert "<html" not in following
    got = rows(following)
    assert len(got) == 10 and not set(got) & set(shown)
    failed = client.get(f"/runs/{run_id}?state=failed").text
    assert rows(failed) == ["leaf_18"]
    assert "leaf 17 broke" in failed
    # Its log opens on the page as filtered.
    assert f'href="/runs/{run_id}?task=leaf_18&amp;state=failed#logs"' in failed
    named = client.get(f"/runs/{run_id}?name=LEAF_2").text
    assert sorted(rows(named)) == sorted(["leaf_2", *(f"leaf_{i}" for i in range(20, 30))])


def test_the_timeline_is_paged_on_one_axis(client: TestClient, run_id: str) -> None:
    html = client.get(f"/runs/{run_id}?limit=5").text
    timeline = html.split('<section id="timeline">')[1].split("</section>")[0]
    assert timeline.count('<g class="row"') == 5
    assert 'data-task="leaf_18"' in timeline.split('<g class="row"')[1]  # failed first
    nxt = re.search(r'data-more="(/runs/[^"]+/timeline[^"]+)"', timeline)
    assert nxt is not None
    page2 = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert page2.count('<g class="row"') == 5
    # Both pages span the whole run: the same axis, so their bars line up.
    ticks = re.compile(r'<text class="tick"[^>]*>([^<]+)</text>')
    assert ticks.findall(timeline) == ticks.findall(page2)


def test_a_big_run_page_is_small(client: TestClient, run_id: str) -> None:
    html = client.get(f"/runs/{run_id}?expand=leaf").text
    folded = client.get(f"/runs/{run_id}").text
    assert len(folded) < len(html) - 20 * 300  # every drawn leaf box costs some 300 bytes


def test_changes_since_an_event_carry_only_the_changed_rows(
    ws: Workspace, client: TestClient, run_id: str
) -> None:
    page = client.get(f"/runs/{run_id}").text
    version = int(re.search(r'data-last-event="(\d+)"', page).group(1))  # type: ignore[union-attr]
    nothing = client.get(f"/runs/{run_id}/changes?after={version}").json()
    assert nothing["version"] == version and nothing["finished"] is True
    assert rows(nothing["rows"]) == [] and nothing["timeline"] is None and nothing["log"] is None
    # The join, never started, is marked: its row changes, the timeline (where it has no
    # bar) is not sent again.
    join = client.post(f"/api/v1/runs/{run_id}/tasks/noop_2/mark", json={"state": "failed"})
    assert join.status_code == 200, join.text
    change = client.get(f"/runs/{run_id}/changes?after={version}").json()
    assert rows(change["rows"]) == ["noop_2"] and change["timeline"] is None
    version = change["version"]
    # An operator marks the failed leaf succeeded: the change holds its row alone, and the
    # timeline's first page, which it headed (failed first) and leaves.
    marked = client.post(f"/api/v1/runs/{run_id}/tasks/leaf_18/mark", json={"state": "succeeded"})
    assert marked.status_code == 200, marked.text
    change = client.get(f"/runs/{run_id}/changes?after={version}&limit=5").json()
    assert change["version"] > version
    assert rows(change["rows"]) == ["leaf_18"]
    assert change["timeline"].count('<g class="row"') == 5
    assert '<g class="row" data-task="leaf_18">' not in change["timeline"]
    assert "state-succeeded" in change["rows"]
    assert 'data-count="30"' in change["graph"] and "state-failed group" not in change["graph"]
    everything = client.get(f"/runs/{run_id}/changes?after=0").json()
    assert len(rows(everything["rows"])) == LEAVES + 2


def test_the_pipeline_page_folds_its_graph_too(client: TestClient) -> None:
    html = client.get("/pipelines/fan").text
    assert 'data-group="leaf" data-count="30"' in html
    assert 'href="/pipelines/fan?expand=leaf#graph"' in html
    expanded = client.get("/pipelines/fan?expand=leaf").text
    assert 'data-group="leaf"' not in expanded and 'data-task="leaf_30"' in expanded
