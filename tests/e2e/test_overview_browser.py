"""The overview page in Chromium against `legato up`: runs made through the API show as
stacked bars coloured by state, each bar titled with its hour and runs, with no script error
or refused resource on the page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import VIEWPORT, watch, web_url
from tests.helpers import Daemons, http_client, make_project, sign_in_link

pytestmark = pytest.mark.slow

CODE = """
from legato import pipeline, task

@task(in_process=True)
def work() -> int:
    return 1

@task(in_process=True, retries=0)
def broken() -> int:
    raise RuntimeError("no data today")

@pipeline
def fine():
    work()

@pipeline
def failing():
    broken()
"""


def test_overview_shows_the_runs_as_bars(
    tmp_path: Path, daemons: Daemons, browser: Browser
) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    url = web_url(daemons.up(project))
    with http_client(url, project) as api:
        made = [api.post(f"/api/v1/pipelines/{p}/runs", json={}).json()["id"]
                for p in ("fine", "fine", "failing")]
        deadline = time.monotonic() + 60
        states: list[str] = []
        while time.monotonic() < deadline:
            states = [api.get(f"/api/v1/runs/{r}").json()["run"]["state"] for r in made]
            if all(s in ("succeeded", "failed") for s in states):
                break
            time.sleep(0.1)
        assert states == ["succeeded", "succeeded", "failed"]

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    try:
        page.goto(sign_in_link(project, url))
        page.goto(url + "/overview")
        expect(page.locator("header nav a").first).to_have_text("Overview")
        day = page.locator('.chart[data-window="day"] svg g.hour')
        expect(day).to_have_count(24)
        expect(page.locator('.chart[data-window="week"] svg g.hour')).to_have_count(168)
        # The runs were made within the last minute, so in the newest bar, unless the hour
        # turned while they were made (then the two newest share them).
        with_runs = page.locator('.chart[data-window="day"] svg g.hour:not([data-total="0"])')
        expect(with_runs.first).to_be_visible()
        totals = [int(t or 0) for t in with_runs.evaluate_all(
            "gs => gs.map(g => g.getAttribute('data-total'))")]
        assert sum(totals) == 3 and len(totals) <= 2, totals
        if totals == [3]:
            bar = with_runs.first
            ok = bar.locator("rect.seg.state-succeeded")
            bad = bar.locator("rect.seg.state-failed")
            expect(ok).to_be_visible()
            expect(bad).to_be_visible()
            # Stacked: the failed segment sits on the succeeded one, half its height, in
            # the page's colours.
            ok_box, bad_box = ok.bounding_box(), bad.bounding_box()
            assert ok_box and bad_box
            assert bad_box["y"] + bad_box["height"] == pytest.approx(ok_box["y"], abs=1)
            assert bad_box["height"] == pytest.approx(ok_box["height"] / 2, abs=1)
            fill = ok.evaluate("e => getComputedStyle(e).fill")
            assert fill == "rgb(34, 160, 107)", fill
            bar.hover()
            title = bar.locator("title").text_content() or ""
            assert title.endswith("UTC: 3 runs (2 succeeded, 1 failed)"), title
        expect(page.locator("#failing tr[data-pipeline=failing]")).to_contain_text("100%")
        expect(page.locator('figure.trend[data-pipeline="fine"] svg g.day')).to_have_count(1)
        assert problems == []
    finally:
        context.close()
