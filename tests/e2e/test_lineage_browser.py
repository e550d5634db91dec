"""The lineage graph page in Chromium against `legato up`: three pipelines' assets drawn as
one graph, a stale asset in the stale colour, and a click on an asset leading to its page;
the catalog's "stale only" filter and the asset page's freshness, with no script error or
refused resource on the pages."""

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
    wait_for,
)

pytestmark = pytest.mark.slow

#: shop.orders must be made again within a second, so it turns stale right after its run;
#: warehouse.sales has a day; reports.sales has no policy.
CODE = """
from datetime import timedelta

from legato import Asset, pipeline, task


@task(in_process=True, produces=Asset("shop.orders", freshness=timedelta(seconds=1)))
def orders() -> list[dict]:
    return [{"id": 1}]


@pipeline
def ingest():
    orders()


@task(in_process=True, consumes="shop.orders",
      produces=Asset("warehouse.sales", freshness=timedelta(days=1)))
def sales() -> list[dict]:
    return [{"total": 1}]


@pipeline
def transform():
    sales()


@task(in_process=True, consumes="warehouse.sales", produces="reports.sales")
def report() -> int:
    return 1


@pipeline
def reporting():
    report()
"""

STALE_RED = "rgb(217, 59, 59)"  # --failed in legato.css


def test_the_lineage_graph_colours_assets_by_freshness_and_links_them(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    daemons: Daemons,
    browser: Browser,
) -> None:
    shot = Shots(screenshots_root(tmp_path_factory.getbasetemp()) / "lineage_browser")
    project = make_project(tmp_path / "proj", CODE, workers=1)
    url = web_url(daemons.up(project))
    with http_client(url, project) as api:
        for pipeline in ("ingest", "transform", "reporting"):
            assert finished_run(api, pipeline, {"params": {}})["state"] == "succeeded"
        wait_for(
            lambda: [a["key"] for a in api.get("/api/v1/assets?stale=true").json()]
            == ["shop.orders"],
            timeout=30, what="shop.orders to turn stale",
        )  # fmt: skip
        entry = api.get("/api/v1/assets/shop.orders").json()["entry"]
        assert entry["freshness"]["state"] == "stale"
        assert entry["freshness"]["why"].startswith("last materialized")

    with signed_in(browser, project, url, shot) as (page, problems):
        page.goto(url + "/assets")
        page.locator("header nav a", has_text="Lineage").click()
        expect(page).to_have_url(url + "/lineage")
        expect(page.locator("header nav a.on")).to_have_text("Lineage")
        graph = page.locator(".lineage-graph svg.dag")
        nodes = graph.locator("g.node")
        expect(nodes).to_have_count(3)
        expect(graph.locator("path.edge")).to_have_count(2)
        stale = graph.locator('g.node[data-task="shop.orders"]')
        expect(stale).to_have_class("node state-stale")
        expect(stale.locator("rect")).to_have_css("stroke", STALE_RED)
        fresh = graph.locator('g.node[data-task="warehouse.sales"]')
        expect(fresh).to_have_class("node state-fresh")
        expect(graph.locator('g.node[data-task="reports.sales"]')).to_have_class(
            "node state-none"
        )
        expect(page.locator(".stale-list")).to_contain_text("shop.orders")
        shot(page, "lineage")

        fresh.click()  # the box sits in a link to its asset
        expect(page).to_have_url(url + "/assets/warehouse.sales")
        expect(page.locator("main h1")).to_have_text("warehouse.sales")
        expect(page.locator(".asset-freshness")).to_contain_text("fresh")
        # The neighbourhood graph on the asset's page leads on upstream.
        around = page.locator(".lineage-graph svg.dag")
        expect(around.locator("g.node")).to_have_count(3)
        around.locator('g.node[data-task="shop.orders"]').click()
        expect(page.locator("main h1")).to_have_text("shop.orders")
        expect(page.locator(".asset-stale-why")).to_contain_text("last materialized")
        expect(page.locator(".asset-stale-why")).to_have_css("color", STALE_RED)

        page.goto(url + "/assets")
        page.locator("input[name=stale]").check()
        page.locator("form.filters button").click()
        rows = page.locator("table.assets tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td.freshness .badge")).to_have_text("stale")
        shot(page, "stale only")
        assert not problems, problems
