"""`legato dev` in Chromium: a page left open shows a module's load error as soon as the
broken edit is saved and drops it when the fix is, without being reloaded; the pipelines page
follows the code (a pipeline added by a save appears)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.cli.test_dev import BROKEN
from tests.e2e.browser import VIEWPORT, watch, web_url
from tests.e2e.test_code_reload import code, edit
from tests.helpers import SLACK, DaemonProcess, make_project, sign_in_link

pytestmark = pytest.mark.slow

#: How long a page may take to show a change (ms): a bound for a busy machine.
SHOWN = 15_000 * SLACK

EXTRA = """

@pipeline
def extra():
    count()
"""


def test_an_open_page_follows_load_errors_and_the_code_without_a_reload(
    tmp_path: Path, browser: Browser
) -> None:
    project = make_project(tmp_path / "proj", code("one"))
    daemon = DaemonProcess(
        ["dev", "--project", str(project), "--port", "0"], tmp_path / "dev.log"
    )
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    try:
        url = web_url(daemon)
        page.goto(sign_in_link(project, url))
        page.goto(url + "/runs")
        page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
        banner = page.locator(".banner.load-errors")
        expect(banner).to_have_count(0)

        edit(project / "flows.py", BROKEN)
        expect(banner).to_contain_text("1 module of the project failed to load", timeout=SHOWN)
        expect(banner).to_contain_text(f"flows: {project / 'flows.py'}:5: SyntaxError")
        assert page.evaluate("() => window.sameDocument === true")

        edit(project / "flows.py", code("fixed"))
        expect(banner).to_have_count(0, timeout=SHOWN)
        assert page.evaluate("() => window.sameDocument === true")

        # The pipelines page is made from the code: it shows the reloaded one by itself.
        page.goto(url + "/")
        rows = page.locator("table.pipelines tr[data-pipeline]")
        expect(rows).to_have_count(1)
        edit(project / "flows.py", code("more") + EXTRA)
        expect(rows).to_have_count(2, timeout=SHOWN)
        expect(page.locator('tr[data-pipeline="extra"]')).to_be_visible()
        assert not problems, problems
    finally:
        context.close()
        daemon.stop()
