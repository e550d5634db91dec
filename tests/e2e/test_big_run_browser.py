"""A run of 10,000 tasks in Chromium against `legato up`: its page is small, its graph is one
box counting the 10,000 leaves by state, the filter finds the failed one, the task table loads
more rows as it scrolls, and the zoom buttons scale the graph; no script error on the way."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import Shots, screenshots_root, signed_in, web_url
from tests.helpers import Daemons, fan_code, finished_run, http_client, make_project

pytestmark = pytest.mark.slow

LEAVES = 10_000
CODE = fan_code(LEAVES, 1234)


def test_a_10000_task_run_is_one_counted_box_and_the_filter_finds_its_failure(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    daemons: Daemons,
    browser: Browser,
) -> None:
    shot = Shots(screenshots_root(tmp_path_factory.getbasetemp()) / "big_run_browser")
    project = make_project(tmp_path / "proj", CODE, workers=2)
    url = web_url(daemons.up(project))
    with http_client(url, project) as api:
        run_id = finished_run(api, "fan", {"params": {}}, timeout=300)["id"]
        html = api.get(f"/runs/{run_id}")
        assert html.status_code == 200
        assert len(html.content) < 500_000, len(html.content)

    with signed_in(browser, project, url, shot) as (page, problems):
        page.goto(f"{url}/runs/{run_id}")
        box = page.locator('.dag-box svg.dag g.group[data-group="leaf"]')
        expect(box).to_have_attribute("data-count", str(LEAVES))
        expect(box.locator("text.label")).to_have_text("leaf \u00d710,000")
        assert (box.locator("title").text_content() or "").endswith("1 failed · 9,999 succeeded")
        assert page.locator(".dag-box svg.dag g.node").count() == 3  # root, leaves, join
        shot(page, "run")

        # The table holds a page of rows and loads the next as it scrolls into view.
        rows = page.locator("table.tasks tbody.task")
        expect(rows).to_have_count(100)
        assert rows.first.get_attribute("data-task") == "leaf_1235"  # failed first
        page.locator("table.tasks a[data-more]").scroll_into_view_if_needed()
        expect(rows).to_have_count(200)
        # So does the timeline, on the same time axis.
        timeline = page.locator("#timeline .gantt-page")
        expect(timeline).to_have_count(1)
        page.locator("#timeline a[data-more]").scroll_into_view_if_needed()
        expect(timeline).to_have_count(2)
        expect(timeline.nth(1).locator("g.row")).to_have_count(100)
        axis = "e => [...e.querySelectorAll('text.tick')].map(t => t.textContent).join()"
        assert timeline.nth(0).evaluate(axis) == timeline.nth(1).evaluate(axis)

        # Zoom in: the graph is drawn larger than the page's width allows by default.
        graph = page.locator(".dag-box svg.dag")
        before = graph.bounding_box()
        page.locator('#graph button[data-zoom="in"]').click()
        after = graph.bounding_box()
        assert before is not None and after is not None and after["width"] > before["width"] * 1.4

        # The filter: failed tasks only, the one failed leaf with its error.
        page.locator("form.task-filter select[name=state]").select_option("failed")
        page.locator("form.task-filter button[type=submit]").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-task", "leaf_1235")
        expect(rows.first).to_contain_text("leaf 1234 broke")
        page.locator("form.task-filter select[name=state]").select_option("")
        page.locator("form.task-filter input[name=name]").fill("leaf_999")
        page.locator("form.task-filter button[type=submit]").click()
        expect(rows).to_have_count(11)  # leaf_999 and leaf_9990 to leaf_9999
        shot(page, "filtered")
        assert not problems, problems
