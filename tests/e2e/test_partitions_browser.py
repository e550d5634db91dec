"""Ten years of hourly partitions in Chromium against `legato web`: the pipeline page stays
small, zooms from months to a day's hours, and a range dragged across at two zoom levels is
backfilled with exactly its partitions; a 365 x 50 two-dimensional set is rows by columns."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.e2e.browser import VIEWPORT, watch
from tests.helpers import Daemons, door, http_client, make_project, sign_in_link, timed_run
from tests.web.test_partitions_page import CODE

pytestmark = pytest.mark.slow

FAILED_HOUR = "2026-03-07T05:00+00:00"


def _serve(daemons: Daemons, project: Path) -> str:
    """`legato web` alone (no scheduler: the backfills made wait, as made) and its URL."""
    web = daemons.up(project, command="web")
    web.wait_output("legato web: ")
    found = re.search(r"legato web: (https?://\S+?)/?\s", web.output())
    assert found, web.output()
    return found.group(1)


def _drag(page: Page, first: Locator, last: Locator) -> None:
    a, b = first.bounding_box(), last.bounding_box()
    assert a and b
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=6)
    page.mouse.up()


def _backfilled(page: Page, project: Path) -> tuple[str, ...]:
    page.locator("form.backfill-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/backfills/[0-9a-z]+$"))
    backfill_id = page.url.rsplit("/", 1)[1]
    with Workspace(project) as ws:
        got = door(ws).automation.backfill_keys(backfill_id, limit=1000)
        assert got.next_offset is None  # every key on this one page
        return tuple(k.key for k in got.keys)


def test_a_range_chosen_in_the_zoomed_map_is_backfilled(
    tmp_path: Path, daemons: Daemons, browser: Browser
) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    with Workspace(project) as ws:  # a few runs, recorded straight into the store
        for n, (key, state) in enumerate(
            [(FAILED_HOUR, RunState.FAILED), ("2026-03-07T11:00+00:00", RunState.SUCCEEDED)]
        ):
            run = timed_run("many", datetime(2026, 3, 8, n, tzinfo=UTC), state, 2.0)
            ws.store.runs.create_run(dataclasses.replace(run, partition=key))
    url = _serve(daemons, project)
    with http_client(url, project) as api:
        html = api.get("/pipelines/many").content
        assert len(html) < 300_000, len(html)

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    try:
        page.goto(sign_in_link(project, url))
        page.goto(url + "/pipelines/many")
        cells = page.locator("#partitions svg.pmap .cell")
        expect(cells).to_have_count(12 * 12)  # the months of 2015 to 2026
        expect(page.locator("#partitions h2")).to_contain_text("1 failed")
        march = page.locator('#partitions .cell[data-first="2026-03-01T00:00+00:00"]')
        assert (march.locator("title").text_content() or "").startswith("2026-03: 1 succeeded")
        expect(march.locator("rect.seg.state-failed")).to_have_count(1)

        march.click()  # zoom: the month's days by hours
        expect(page).to_have_url(re.compile(r"zoom=2026-03"))
        expect(cells).to_have_count(31 * 24)
        page.locator('#partitions .zoom-crumbs a', has_text="2026").click()
        expect(page).to_have_url(re.compile(r"zoom=2026#"))
        # A range of days chosen at this level: every hour of them is backfilled.
        _drag(page, page.locator('.cell[data-first="2026-02-01T00:00+00:00"]'),
              page.locator('.cell[data-first="2026-02-02T00:00+00:00"]'))
        expect(page.locator("#partitions .cell.selected")).to_have_count(2)
        expect(page.locator(".selected-count")).to_have_text(
            "48 partitions selected: 2026-02-01T00:00+00:00 … 2026-02-02T23:00+00:00"
        )
        keys = _backfilled(page, project)
        assert keys == tuple(f"2026-02-{d:02d}T{h:02d}:00+00:00" for d in (1, 2) for h in range(24))

        # Down to one day: its hours one partition each; a range of them backfilled alone.
        page.goto(url + "/pipelines/many?zoom=2026-03-07")
        expect(cells).to_have_count(24)
        failed = page.locator(f'#partitions .cell[data-key="{FAILED_HOUR}"]')
        expect(failed).to_have_class(re.compile(r"\bstate-failed\b"))
        # By keyboard: Space picks an hour, Shift+Space another and the hours between.
        page.locator('.cell[data-key="2026-03-07T20:00+00:00"]').focus()
        page.keyboard.press(" ")
        page.locator('.cell[data-key="2026-03-07T22:00+00:00"]').focus()
        page.keyboard.press("Shift+ ")
        expect(page.locator(".selected-count")).to_have_text(
            "3 partitions selected: 2026-03-07T20:00+00:00 … 2026-03-07T22:00+00:00"
        )
        _drag(page, page.locator('.cell[data-key="2026-03-07T04:00+00:00"]'),
              page.locator('.cell[data-key="2026-03-07T07:00+00:00"]'))
        expect(page.locator("form.backfill-form button[type=submit]")).to_have_text(
            "Backfill 4 partitions"
        )
        keys = _backfilled(page, project)
        assert keys == tuple(f"2026-03-07T{h:02d}:00+00:00" for h in (4, 5, 6, 7))

        # Only failed or missing: the list shows the failed hour of that day.
        page.goto(url + "/pipelines/many?zoom=2026-03-07&state=failed")
        expect(page.locator("table.partition-list tbody tr")).to_have_count(1)
        expect(page.locator("table.partition-list")).to_contain_text(FAILED_HOUR)
        assert problems == []
    finally:
        context.close()


def test_two_dimensions_render_as_rows_by_columns(
    tmp_path: Path, daemons: Daemons, browser: Browser
) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    url = _serve(daemons, project)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    try:
        page.goto(sign_in_link(project, url))
        page.goto(url + "/pipelines/stores")
        expect(page.locator("#partitions h2")).to_contain_text(f"{365 * 50} in all")
        expect(page.locator("svg.pmap .row-label")).to_have_count(50)
        expect(page.locator("svg.pmap .cell")).to_have_count(50 * 12)
        top = page.locator('svg.pmap .cell[data-r="0"][data-c="1"]').bounding_box()
        below = page.locator('svg.pmap .cell[data-r="1"][data-c="1"]').bounding_box()
        right = page.locator('svg.pmap .cell[data-r="0"][data-c="2"]').bounding_box()
        assert top and below and right
        assert below["x"] == top["x"] and below["y"] > top["y"]
        assert right["y"] == top["y"] and right["x"] > top["x"]
        # A rectangle of two stores by two months is backfilled as that rectangle.
        _drag(page, page.locator('svg.pmap .cell[data-r="1"][data-c="0"]'),
              page.locator('svg.pmap .cell[data-r="2"][data-c="1"]'))
        expect(page.locator("#partitions .cell.selected")).to_have_count(4)
        keys = _backfilled(page, project)
        days = [f"2025-01-{d:02d}" for d in range(1, 32)] + [
            f"2025-02-{d:02d}" for d in range(1, 29)
        ]
        assert sorted(keys) == sorted(f"{s}|{d}" for s in ("s01", "s02") for d in days)
        assert problems == []
    finally:
        context.close()
