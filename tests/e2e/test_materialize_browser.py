"""Materialize from the asset page in Chromium against `legato up`: an operator picks the
partition and presses Materialize; the run page opens and, as the daemon drives the run,
shows the producing task succeeded, the input made earlier reused, and a task the asset does
not need skipped, with no script error or refused resource on the pages."""

from __future__ import annotations

import re
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
from legato import pipeline, task
from legato.partitions import static


@task(in_process=True, consumes="shop.orders")
def extract(ctx) -> list[dict]:
    return [{"id": i, "region": ctx.partition} for i in range(4)]


@task(in_process=True, produces="warehouse.daily_sales")
def daily_sales(rows: list[dict], scale: int) -> int:
    return len(rows) * scale


@task(in_process=True, produces="reports.stores")
def store_report(rows: list[dict]) -> int:
    return 1


@pipeline(partitions=static(["eu", "us"]))
def sales(scale: int = 1):
    rows = extract()
    daily_sales(rows, scale)
    store_report(rows)
"""


def test_materialize_from_the_asset_page(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    daemons: Daemons,
    browser: Browser,
) -> None:
    shot = Shots(screenshots_root(tmp_path_factory.getbasetemp()) / "materialize_browser")
    project = make_project(tmp_path / "proj", CODE, workers=1)
    url = web_url(daemons.up(project))
    with http_client(url, project) as api:
        made = finished_run(api, "sales", {"partition": "eu"})
        assert made["state"] == "succeeded"
        first = made["id"]

    with signed_in(browser, project, url, shot) as (page, problems):
        page.goto(url + "/assets/warehouse.daily_sales")
        form = page.locator("form.materialize")
        expect(form).to_be_visible()
        form.locator('input[name="partition"]').fill("eu")
        shot(page, "asset")
        form.locator("button", has_text="Materialize").click()

        expect(page).to_have_url(
            re.compile(rf"{url}/runs/[0-9a-f]{{20}}$"), timeout=15_000
        )
        head = page.locator("#live .head")
        expect(head).to_contain_text("materialize:warehouse.daily_sales")
        expect(head).to_contain_text("eu")
        tasks = page.locator("table.tasks")
        producing = tasks.locator('tr[data-task="daily_sales"]')
        expect(producing.locator(".badge")).to_have_text("succeeded", timeout=60_000)
        reused = tasks.locator('tr[data-task="extract"]')
        expect(reused).to_contain_text(f"reused from {first[:8]}")
        expect(reused.locator(".badge")).to_have_text("succeeded")
        skipped = tasks.locator('tr[data-task="store_report"]')
        expect(skipped.locator(".badge")).to_have_text("skipped")
        expect(skipped).to_contain_text("not needed to materialize warehouse.daily_sales")
        expect(page.locator("#live .head h1 .badge")).to_have_text("succeeded", timeout=60_000)
        shot(page, "run")

        # A partition that does not exist is said at the form, and nothing opens.
        page.goto(url + "/assets/warehouse.daily_sales")
        form = page.locator("form.materialize")
        form.locator('input[name="partition"]').fill("asia")
        form.locator("button", has_text="Materialize").click()
        expect(form.locator(".form-error")).to_contain_text("asia")
        expect(page).to_have_url(url + "/assets/warehouse.daily_sales")

        # With params: the launcher's form, materializing with the params given.
        page.locator("form.materialize a.with-params").click()
        expect(page.locator("main h1")).to_have_text(
            "Materialize warehouse.daily_sales with sales"
        )
        page.fill("#f-partition", "eu")
        page.fill("#f-scale", "3")
        page.get_by_role("button", name="Materialize").click()
        expect(page).to_have_url(re.compile(rf"{url}/runs/[0-9a-f]{{20}}$"), timeout=15_000)
        expect(page.locator("#live .head h1 .badge")).to_have_text("succeeded", timeout=60_000)
        run_id = page.url.rsplit("/", 1)[1]
        with http_client(url, project) as api:
            run = api.get(f"/api/v1/runs/{run_id}").json()["run"]
            assert (run["params"], run["partition"]) == ({"scale": 3}, "eu")
            made = api.get("/api/v1/assets/warehouse.daily_sales").json()
            assert made["entry"]["latest"]["run_id"] == run_id, made
        assert not problems, problems
