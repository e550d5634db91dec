"""The Assets pages in Chromium against `legato up`: runs made through the API materialize an
asset; the catalog lists it, its link opens the asset's page with the row-count chart and the
preview of its latest output, with no script error or refused resource on the pages."""

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
from legato import Asset, pipeline, task


@task(in_process=True, produces=Asset("shop.orders", description="Orders of the day"))
def orders(n: int) -> list[dict]:
    return [{"id": i, "city": f"city-{i}"} for i in range(n)]


@task(in_process=True, consumes="shop.orders", produces="reports.orders")
def report(rows: list[dict]) -> int:
    return len(rows)


@pipeline
def ingest(n: int = 3):
    report(orders(n))
"""


def test_the_catalog_leads_to_an_asset_with_its_chart_and_preview(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    daemons: Daemons,
    browser: Browser,
) -> None:
    shot = Shots(screenshots_root(tmp_path_factory.getbasetemp()) / "assets_browser")
    project = make_project(tmp_path / "proj", CODE, workers=1)
    url = web_url(daemons.up(project))
    with http_client(url, project) as api:
        for n in (2, 5):
            assert finished_run(api, "ingest", {"params": {"n": n}})["state"] == "succeeded"

    with signed_in(browser, project, url, shot) as (page, problems):
        page.goto(url + "/assets")
        expect(page.locator("header nav a.on")).to_have_text("Assets")
        rows = page.locator("table.assets tbody tr")
        expect(rows).to_have_count(2)
        orders = page.locator('tr[data-asset="shop.orders"]')
        expect(orders).to_contain_text("Orders of the day")
        expect(orders).to_contain_text("ingest.orders")
        shot(page, "catalog")

        orders.locator("a.name").click()
        expect(page).to_have_url(url + "/assets/shop.orders")
        expect(page.locator("main h1")).to_have_text("shop.orders")
        chart = page.locator(".rows-box svg.rows-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("circle.point")).to_have_count(2)
        assert "5 rows" in (chart.locator("circle.point title").last.text_content() or "")
        preview = page.locator("table.preview")
        expect(preview.locator("thead th")).to_have_text(["id", "city"])
        expect(preview.locator("tbody tr")).to_have_count(5)
        expect(preview.locator("tbody tr").first).to_contain_text("city-0")
        expect(page.locator("table.materializations tbody tr")).to_have_count(2)
        shot(page, "asset")
        page.locator("ul.downstream a", has_text="reports.orders").click()
        expect(page.locator("main h1")).to_have_text("reports.orders")
        assert not problems, problems
