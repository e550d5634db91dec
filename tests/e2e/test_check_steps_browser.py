"""A run's checks in its graph, in Chromium against `legato up`: a failing blocking check is a
red check node after its task, the task downstream of it is drawn as not run, and a passing
check is green; no script error or refused resource on the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import Shots, screenshots_root, signed_in, web_url
from tests.helpers import (
    Daemons,
    finished_run,
    http_client,
    make_project,
)

pytestmark = pytest.mark.slow

CODE = """
from legato import checks, pipeline, task


@task(in_process=True, produces="shop.orders",
      checks=[checks.unique("order_id"), checks.row_count(min=1)])
def orders(bad: bool) -> list[dict]:
    return [{"order_id": i} for i in ([1, 2, 2] if bad else [1, 2, 3])]


@task(in_process=True)
def report(rows: list[dict]) -> int:
    return len(rows)


@pipeline
def shop(bad: bool = True):
    report(orders(bad))
"""

RED = "rgb(217, 59, 59)"  # --failed
GREEN = "rgb(34, 160, 107)"  # --succeeded


def test_a_failing_blocking_check_is_a_red_node_and_downstream_is_not_run(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    daemons: Daemons,
    browser: Browser,
) -> None:
    shot = Shots(screenshots_root(tmp_path_factory.getbasetemp()) / "check_steps_browser")
    project = make_project(tmp_path / "proj", CODE, workers=1)
    url = web_url(daemons.up(project))
    with http_client(url, project) as api:
        run_id = finished_run(api, "shop", {"params": {"bad": True}})["id"]

    with signed_in(browser, project, url, shot) as (page, problems):
        page.goto(f"{url}/runs/{run_id}")
        graph = page.locator(".dag-box svg.dag")
        expect(graph).to_be_visible()
        unique = graph.locator('g.node.check[data-check="orders:unique(order_id)"]')
        expect(unique).to_have_class("node state-failed check")
        expect(unique.locator("text.label")).to_have_text("unique(order_id)")
        assert unique.locator("rect").evaluate("r => getComputedStyle(r).stroke") == RED
        assert "2 of 3 rows failed" in (unique.locator("title").text_content() or "")
        counted = graph.locator('g.node.check[data-check="orders:row_count"]')
        assert counted.locator("rect").evaluate("r => getComputedStyle(r).stroke") == GREEN
        expect(graph.locator('path.edge[data-target="orders:unique(order_id)"]')).to_have_attribute(
            "data-source", "orders"
        )
        report = graph.locator('g.node[data-task="report"]')
        expect(report).to_have_class("node state-upstream_failed")
        expect(page.locator('tr[data-task="report"]')).to_contain_text("upstream_failed")
        shot(page, "run")
        # A check's node opens its task's log, where the check's finding is written.
        unique.click()
        expect(page.locator("#logs")).to_contain_text("check unique(order_id) [block]: failed")
        assert not problems, problems
