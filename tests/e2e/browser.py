"""Helpers of the browser tests: Chromium through Playwright, screenshots, `legato up` URLs.

``launch_chromium(p)``
    Debian's Chromium (``/usr/bin/chromium``) started headless by Playwright. Missing: the
    test is skipped, or fails when the environment variable ``CI`` is ``"true"``.
``Shots(folder)``
    ``shots(page, "label")`` saves a full-page screenshot as ``NN-label.png`` in ``folder``
    (``screenshots_root(...)/<test name>/``), numbered in the order taken.
``web_url(daemon)``
    The web UI's base URL that ``legato up`` printed ("web UI at http://...:PORT/").
``watch(page)``
    The script errors and Content-Security-Policy violations a page reports, as they come.
``signed_in(browser, project, url, shot)``
    A page of a fresh browser context signed in through a one-time link, with ``watch``'s
    list; the context is closed after.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, ViewportSize

    from tests.helpers import DaemonProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def screenshots_root(base_temp: Path) -> Path:
    """Where screenshots go: ``$LEGATO_TEST_SCREENSHOTS`` when set (to keep them, e.g. as CI
    artifacts), else ``screenshots/`` in pytest's temporary folder, never the checkout."""
    chosen = os.environ.get("LEGATO_TEST_SCREENSHOTS")
    return Path(chosen) if chosen else base_temp / "screenshots"


def require_chromium() -> Path:
    """The Chromium binary; missing: skip, or fail when CI=true."""
    if not CHROMIUM.exists():
        reason = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def launch_chromium(p: Playwright) -> Browser:
    """Headless Chromium for the tests (see ``require_chromium``)."""
    return p.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)


def safe_name(text: str) -> str:
    """A file or folder name made of ``text`` (test ids hold brackets and slashes)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "test"


class Shots:
    """Numbered full-page screenshots of one test, in a folder emptied when it starts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        shutil.rmtree(folder, ignore_errors=True)

    def __call__(self, page: Page, label: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{safe_name(label)}.png"
        self.folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    def failed(self, page: Page) -> Path | None:
        """``FAILED.png``: what the page showed when the test failed (None if it cannot)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "FAILED.png"
        try:
            page.screenshot(path=str(path), full_page=True, timeout=10_000)
        except Exception:  # a crashed or closed page: nothing to show
            return None
        return path


#: Reports each Content-Security-Policy violation to the console, where ``watch`` hears it
#: (Chromium also logs a refusal there itself; this one names the directive and the source).
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
                + ` (${e.sourceFile}:${e.lineNumber})`);
});
"""


def watch(page: Page) -> list[str]:
    """The problems ``page`` reports from now on, appended as they come: uncaught script
    errors, and every Content-Security-Policy violation (something the policy refused to
    load or run)."""
    problems: list[str] = []
    page.context.add_init_script(_REPORT_VIOLATIONS)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))

    def console(message: ConsoleMessage) -> None:
        text = message.text
        if "CSP violation" in text or "Content Security Policy" in text:
            problems.append(text)

    page.on("console", console)
    return problems


def web_url(daemon: DaemonProcess, timeout: float = 30.0) -> str:
    """Wait until ``legato up`` prints where its web UI is; that URL without the last slash."""
    daemon.wait_output("web UI at", timeout=timeout)
    found = re.search(r"web UI at (https?://\S+?)/?\s", daemon.output())
    assert found, daemon.output()
    return found.group(1)


@contextmanager
def signed_in(
    browser: Browser, project: Path, url: str, shot: Shots
) -> Iterator[tuple[Page, list[str]]]:
    """A page of a fresh context, signed in to ``url`` through a one-time sign-in link of
    ``project``, and the problems it reports (``watch``); a failure inside saves the page's
    screenshot (``shot.failed``); the context closes after."""
    from tests.helpers import sign_in_link

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    try:
        page.goto(sign_in_link(project, url))
        yield page, problems
    except Exception:
        shot.failed(page)
        raise
    finally:
        context.close()
