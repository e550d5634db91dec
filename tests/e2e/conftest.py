"""Fixtures of the whole-system tests: daemons that are always stopped, project stores, and
one headless Chromium per module for the browser tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import Daemons

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from legato.store.store import Store


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Starts `legato up` processes; every one still running is stopped after the test."""
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def store_of() -> Iterator[Callable[[Path], Store]]:
    """``store_of(project)``: the project's store, opened once here, closed after the test."""
    from legato.services.workspace import Workspace

    opened: dict[Path, Workspace] = {}

    def get(project: Path) -> Store:
        if project not in opened:
            opened[project] = Workspace(project)
        return opened[project].store

    yield get
    for ws in opened.values():
        ws.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test (``item.rep_call``): fixtures tearing down can
    see whether the test failed (the browser tests then save a screenshot, FAILED.png)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (Debian's, through Playwright) for the module's tests."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import launch_chromium

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        try:
            yield chromium
        finally:
            chromium.close()
