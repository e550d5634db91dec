"""The web UI in a real browser: `legato up` serving a project, driven with Playwright.

Two daemons serve the whole module: one on a copy of examples/retail_orders, one on a small
project of gated tasks (a task fails until a marker file exists; another waits for a gate
file, so a run is caught while it runs). Each test opens a fresh browser page and checks what a
user sees. Every page a test visits is saved under screenshots/<test>/ in pytest's temporary
folder (or $LEGATO_TEST_SCREENSHOTS, to keep them), and a failed test also saves FAILED.png
there.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import (
    VIEWPORT,
    Shots,
    safe_name,
    screenshots_root,
    watch,
    web_url,
)
from tests.helpers import Daemons, free_port, make_project, project_token, sign_in_link

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retail_orders"
DAILY_TASKS = [
    "extract_csv_orders",
    "extract_shop_orders",
    "extract_customers",
    "normalize_timestamps",
    "deduplicate_orders",
    "join_customers",
    "fetch_rates",
    "aggregate_daily_sales",
    "load_daily_sales",
    "push_daily_summary",
    "publish_daily_summary",
]
DAILY_CHECKS = 8  # retail.checks: 1 on shop.orders, 5 on the cleaned orders, 2 on daily sales
RUN_DONE = 30_000  # ms a run of these projects may take to finish, on a busy machine
BADGE = "#live .head h1 .badge"
expect.set_options(timeout=10_000)  # what a page may take to show something, when busy

GATED = """
import time
from pathlib import Path

from legato import Context, pipeline, task

HERE = Path(__file__).parent


@task
def prepare(ctx: Context, label: str) -> str:
    print(f"preparing {label}")
    return label


@task(retries=0)
def check_ready(ctx: Context, label: str, limits: dict[str, int]) -> str:
    print(f"checking {label} against {limits}")
    if not (HERE / f"{label}.ready").exists():
        raise RuntimeError(f"{label}.ready is missing: nothing to load")
    return label


@task
def finish(ctx: Context, label: str) -> str:
    # Waits (at most a minute) for the test to open the gate: the run is seen running.
    gate = HERE / f"{label}.go"
    deadline = time.monotonic() + 60
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"finished {label}")
    return label


@pipeline
def gated(label: str = "one", limits: dict[str, int] = {"rows": 10}):
    finish(check_ready(prepare(label), limits))
"""


@dataclass
class Served:
    """A project and the URL of the `legato up` serving it."""

    project: Path
    url: str
    token: str = ""

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.token:
            self.token = project_token(self.project)
        auth = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=30, headers=auth) as http:
            res = http.request(method, path, **kwargs)
        assert res.status_code < 400, f"{method} {path}: {res.status_code} {res.text}"
        return res.json()

    def sign_in(self, page: Page) -> None:
        """Sign the page's browser in, as the local admin, with a one-time link."""
        page.goto(sign_in_link(self.project, self.url))
        assert "/signin" not in page.url, page.url

    def launch(self, pipeline: str, **body: Any) -> str:
        """Launch a run through the API; its id."""
        return str(self.api("POST", f"/api/v1/pipelines/{pipeline}/runs", json=body)["id"])

    def wait_run(self, run_id: str, state: str, timeout: float = RUN_DONE / 1000) -> None:
        deadline = time.monotonic() + timeout
        while True:
            got = self.api("GET", f"/api/v1/runs/{run_id}")["run"]["state"]
            if got == state:
                return
            assert time.monotonic() < deadline, f"run {run_id} is {got}, not {state}"
            time.sleep(0.1)


# -- fixtures -------------------------------------------------------------------------------




@pytest.fixture(scope="module")
def module_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemons]:
    """`legato up` processes shared by the module's tests; all stopped at its end."""
    started = Daemons(tmp_path_factory.mktemp("daemon-logs"))
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory, module_daemons: Daemons) -> Served:
    """A fresh copy of examples/retail_orders served by `legato up` (its own legato.toml)."""
    project = tmp_path_factory.mktemp("retail") / "retail_orders"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".legato", "__pycache__", "*.pyc")
    )
    daemon = module_daemons.up(project, port=free_port())
    return Served(project, web_url(daemon))


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, module_daemons: Daemons) -> Served:
    """The gated project (see GATED) served by `legato up`."""
    project = make_project(tmp_path_factory.mktemp("gated") / "gates", GATED)
    daemon = module_daemons.up(project, port=free_port())
    return Served(project, web_url(daemon))


@pytest.fixture
def shot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Shots:
    """``shot(page, "label")``: a full-page screenshot into ``screenshots_root``/<test>/."""
    root = screenshots_root(tmp_path_factory.getbasetemp())
    return Shots(root / safe_name(request.node.name))


@pytest.fixture
def page(browser: Browser, shot: Shots, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new page (in its own context) at 1280x800; FAILED.png if the test fails."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    new = context.new_page()
    problems = watch(new)
    try:
        yield new
        report = getattr(request.node, "rep_call", None)
        if report is None or not report.failed:
            # A script error or a refusal by the security policy (an inline script or style
            # the policy blocks) is a bug even when the page still looks right.
            assert not problems, f"problems reported by the page: {problems}"
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            shot.failed(new)
        context.close()


def live_probe(page: Page) -> None:
    """Mark the loaded page (``__probe``) and record each state its run badge shows."""
    page.evaluate(
        """() => {
          window.__probe = 1;
          const badge = () => document.querySelector("#live .head h1 .badge");
          window.__seen = [badge().textContent.trim()];
          new MutationObserver(() => {
            const b = badge();
            const t = b && b.textContent.trim();
            if (t && window.__seen[window.__seen.length - 1] !== t) window.__seen.push(t);
          }).observe(document.getElementById("live"), {childList: true, subtree: true});
        }"""
    )


def until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        time.sleep(every)


def run_id_of(page: Page) -> str:
    found = re.search(r"/runs/([0-9a-z]+)$", page.url.split("?")[0].split("#")[0])
    assert found, page.url
    return found.group(1)


# -- 1. the overview and a pipeline's page ----------------------------------------------------


def test_overview_leads_to_the_pipeline_page_with_its_graph_and_partitions(
    page: Page, shot: Shots, retail: Served
) -> None:
    retail.sign_in(page)
    page.goto(retail.url + "/")
    rows = page.locator("table.pipelines tbody tr")
    expect(rows.locator("a.name")).to_have_text(
        ["daily_sales", "import_orders_file", "store_reports"]
    )
    expect(page.locator("header .health")).to_have_text("scheduler running")
    shot(page, "overview")

    page.locator("table.pipelines a.name", has_text="daily_sales").click()
    expect(page).to_have_url(retail.url + "/pipelines/daily_sales")
    expect(page.locator("main h1")).to_have_text("daily_sales")
    dag = page.locator(".dag-box svg")
    expect(dag).to_be_visible()
    for name in DAILY_TASKS:
        node = dag.locator(f'g.node[data-task="{name}"]')
        expect(node).to_have_count(1)
        expect(node).to_contain_text(name)
    expect(dag.locator("g.node[data-task]")).to_have_count(len(DAILY_TASKS))
    # Each task's checks are steps after it: the example declares DAILY_CHECKS of them.
    expect(dag.locator("g.node.check")).to_have_count(DAILY_CHECKS)
    cells = page.locator("#partitions .cell[data-key]")
    keys = cells.evaluate_all("cs => cs.map(c => c.dataset.key)")
    assert keys[:3] == ["2026-11-14", "2026-11-15", "2026-11-16"], keys
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", k) for k in keys) and keys == sorted(keys)
    expect(page.locator("#partitions h2")).to_contain_text(f"{len(keys)} in all")
    expect(page.locator("#partitions .selected-count")).to_have_text("No partition selected")
    expect(page.locator("form.backfill-form button[type=submit]")).to_be_disabled()
    shot(page, "pipeline")


# -- 2. the launcher, and a run followed live ----------------------------------------------


def test_launch_a_run_and_watch_it_finish_live(page: Page, shot: Shots, retail: Served) -> None:
    retail.sign_in(page)
    page.goto(retail.url + "/pipelines/daily_sales")
    page.get_by_role("link", name="Launch run").click()
    expect(page).to_have_url(retail.url + "/pipelines/daily_sales/launch")
    expect(page.locator("main h1")).to_have_text("Launch a run of daily_sales")
    page.fill("#f-min_amount", "12.5")
    page.fill("#f-partition", "2026-11-14")
    shot(page, "launcher")
    page.get_by_role("button", name="Launch").click()

    page.wait_for_url(re.compile(r"/runs/[0-9a-z]+$"))
    run_id = run_id_of(page)
    expect(page.locator("#live .head h1 .mono")).to_have_text(run_id)
    live_probe(page)
    asked: list[str] = []  # what the live page fetched of its run: changes, never the page
    page.on("request", lambda r: asked.append(r.url) if f"/runs/{run_id}/" in r.url else None)
    first = page.evaluate("window.__seen[0]")
    shot(page, "run-started")
    # The run fails its first try of extract_shop_orders and retries a second later: the
    # page is loaded long before the run can finish.
    assert first in ("queued", "running"), first

    expect(page.locator(BADGE)).to_have_text("succeeded", timeout=RUN_DONE)
    nodes = page.locator(".dag-box svg g.node[data-task]")
    expect(nodes).to_have_count(len(DAILY_TASKS))
    checks = page.locator(".dag-box svg g.node.check")
    expect(checks).to_have_count(DAILY_CHECKS)
    for i in range(DAILY_CHECKS):
        expect(checks.nth(i)).to_have_class(re.compile(r"\bstate-passed\b"))
    for name in DAILY_TASKS:
        expect(page.locator(f'.dag-box g.node[data-task="{name}"]')).to_have_class(
            re.compile(r"\bstate-succeeded\b")
        )
    expect(page.locator('g.node[data-task="extract_shop_orders"]')).to_contain_text("attempt 2")
    meta = page.locator("#live .head .meta")
    expect(meta.first).to_contain_text("partition 2026-11-14")
    expect(page.locator("#live .head")).to_contain_text("min_amount=12.5")
    # The log panel shows the last task's log (one of the two activation steps), live-redrawn.
    expect(page.locator("pre.log")).to_contain_text(re.compile(r"pushed|published"))
    assert page.evaluate("window.__probe") == 1, "the run page was reloaded"
    seen = page.evaluate("window.__seen")
    assert seen[-1] == "succeeded" and "running" in seen, seen
    assert any(f"/runs/{run_id}/changes?" in u and "after=" in u for u in asked), asked
    assert not any(f"/runs/{run_id}/live" in u for u in asked), asked
    shot(page, "run-finished")


def test_launcher_shows_a_refused_value_at_its_field(
    page: Page, shot: Shots, retail: Served, gated: Served
) -> None:
    # A partition before the first one: the API refuses it (422), shown under the field.
    retail.sign_in(page)
    page.goto(retail.url + "/pipelines/daily_sales/launch")
    # A run without a partition loads every day: the field may be left empty.
    expect(page.locator('label[for="f-partition"]')).not_to_contain_text("required")
    page.fill("#f-partition", "2020-01-01")
    page.get_by_role("button", name="Launch").click()
    error = page.locator('.field[data-field="partition"] .field-error')
    expect(error).to_be_visible()
    expect(error).to_contain_text("before the first partition 2026-11-14")
    expect(page.locator('.field[data-field="min_amount"] .field-error')).to_be_hidden()
    expect(page).to_have_url(retail.url + "/pipelines/daily_sales/launch")
    shot(page, "unknown-partition")

    # A JSON param: text that is not JSON is caught before sending; a value of the wrong
    # type is refused by the API; both show at the param's own field.
    gated.sign_in(page)  # another server on this host: its own session cookie replaces ours
    page.goto(gated.url + "/pipelines/gated/launch")
    limits = page.locator("#f-limits")
    expect(limits).to_have_value('{"rows": 10}')
    limits.fill('{"rows": ')
    page.get_by_role("button", name="Launch").click()
    error = page.locator('.field[data-field="limits"] .field-error')
    expect(error).to_be_visible()
    expect(error).to_contain_text("not valid JSON")
    shot(page, "not-json")
    limits.fill('{"rows": "many"}')
    page.get_by_role("button", name="Launch").click()
    expect(error).to_contain_text("param 'limits' expects dict")
    expect(page.locator('.field[data-field="label"] .field-error')).to_be_hidden()
    expect(page).to_have_url(gated.url + "/pipelines/gated/launch")
    expect(page.get_by_role("button", name="Launch")).to_be_enabled()
    shot(page, "wrong-type")
    runs = gated.api("GET", "/api/v1/runs", params={"pipeline": "gated", "limit": 500})["runs"]
    assert not [r for r in runs if r["params"].get("limits") != {"rows": 10}], runs


# -- 3 and 4. a failed task's log, and re-running from the failure ----------------------------


def test_failed_task_shows_its_log(page: Page, shot: Shots, gated: Served) -> None:
    label = "logs"
    gated.sign_in(page)
    page.goto(gated.url + "/pipelines/gated/launch")
    page.fill("#f-label", label)
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-z]+$"))
    failed_id = run_id_of(page)
    expect(page.locator(BADGE)).to_have_text("failed", timeout=RUN_DONE)
    expect(page.locator('g.node[data-task="check_ready"]')).to_have_class(
        re.compile(r"\bstate-failed\b")
    )
    expect(page.locator('g.node[data-task="finish"]')).to_have_class(
        re.compile(r"\bstate-upstream_failed\b")
    )

    # Opened afresh, the page shows the failed task's log first.
    page.goto(f"{gated.url}/runs/{failed_id}")
    logs = page.locator("#logs")
    expect(logs.locator("h2")).to_have_text("Log of check_ready")
    expect(page.locator("table.tasks tr.selected")).to_have_attribute("data-task", "check_ready")
    expect(logs.locator(".tab.on")).to_have_text("attempt 1 · failed")
    log = logs.locator("pre.log")
    expect(log).to_contain_text("checking logs against {'rows': 10}")
    expect(log).to_contain_text("RuntimeError: logs.ready is missing: nothing to load")
    expect(logs.locator("p.error-text")).to_have_text(
        "RuntimeError: logs.ready is missing: nothing to load"
    )
    expect(page.locator("#live .head .error-text")).to_contain_text("1 task failed: check_ready")
    shot(page, "failed-run")

    # Another task's log is a click away.
    page.locator('g.node[data-task="prepare"]').click()
    expect(logs.locator("h2")).to_have_text("Log of prepare")
    expect(logs.locator("pre.log")).to_contain_text("preparing logs")
    expect(page.locator("table.tasks tr.selected")).to_have_attribute("data-task", "prepare")
    shot(page, "prepare-log")
    page.go_back()
    expect(logs.locator("h2")).to_have_text("Log of check_ready")
    expect(logs.locator("pre.log")).to_contain_text("logs.ready is missing")


def test_rerun_from_failure_reuses_what_succeeded(page: Page, shot: Shots, gated: Served) -> None:
    label = "rerun"
    failed_id = gated.launch("gated", params={"label": label})
    gated.wait_run(failed_id, "failed")
    gated.sign_in(page)
    page.goto(f"{gated.url}/runs/{failed_id}")
    expect(page.locator(BADGE)).to_have_text("failed")
    shot(page, "failed-run")

    # Fix the cause, then re-run from the failure.
    (gated.project / f"{label}.ready").write_text("ok")
    page.get_by_role("button", name="Re-run from failure").click()
    page.wait_for_url(lambda url: "/runs/" in url and failed_id not in url)
    new_id = run_id_of(page)
    expect(page.locator("#live .head .meta").first).to_contain_text(
        f"re-run (from_failure) of {failed_id}"
    )
    expect(page.locator("#live .head .meta a", has_text=failed_id)).to_have_attribute(
        "href", f"/runs/{failed_id}"
    )
    # `finish` waits for its gate: the run is still going when the page is shown.
    expect(page.locator(BADGE)).to_have_text("running", timeout=RUN_DONE)
    live_probe(page)
    expect(page.locator('g.node[data-task="finish"]')).to_have_class(
        re.compile(r"\bstate-running\b"), timeout=RUN_DONE
    )
    shot(page, "rerun-running")
    (gated.project / f"{label}.go").write_text("go")
    expect(page.locator(BADGE)).to_have_text("succeeded", timeout=RUN_DONE)
    for name in ("prepare", "check_ready", "finish"):
        expect(page.locator(f'g.node[data-task="{name}"]')).to_have_class(
            re.compile(r"\bstate-succeeded\b")
        )
    # The task that had succeeded is reused, not run again.
    expect(page.locator('g.node[data-task="prepare"]')).to_contain_text("reused")
    expect(page.locator('table.tasks tr[data-task="prepare"]')).to_contain_text(
        f"reused from {failed_id[:8]}"
    )
    expect(page.locator('table.tasks tr[data-task="check_ready"]')).not_to_contain_text("reused")
    expect(page.get_by_role("button", name="Re-run from failure")).to_have_count(0)
    assert page.evaluate("window.__probe") == 1, "the run page was reloaded"
    assert page.evaluate("window.__seen")[-1] == "succeeded"
    assert run_id_of(page) == new_id
    shot(page, "rerun-succeeded")


# -- 5. a backfill from the partitions grid ------------------------------------------------


def test_drag_across_the_partitions_grid_to_backfill(
    page: Page, shot: Shots, retail: Served
) -> None:
    retail.sign_in(page)
    page.goto(retail.url + "/pipelines/daily_sales")
    cells = page.locator("#partitions .cell[data-key]")
    # Days no other test runs (test 2 loads 2026-11-14).
    wanted = ["2026-11-16", "2026-11-17", "2026-11-18"]
    # The mouse moves in the window: the cells must be in it, below the graph.
    page.locator(f'#partitions .cell[data-key="{wanted[0]}"]').scroll_into_view_if_needed()
    boxes = []
    for key in wanted:
        cell = page.locator(f'#partitions .cell[data-key="{key}"]')
        expect(cell).to_have_class(re.compile(r"\bstate-never_run\b"))
        box = cell.bounding_box()
        assert box is not None
        boxes.append(box)
    centre = [(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2) for b in boxes]
    page.mouse.move(*centre[0])
    page.mouse.down()
    for x, y in centre[1:]:
        page.mouse.move(x, y, steps=5)
    page.mouse.up()

    selected = page.locator("#partitions .cell.selected")
    expect(selected).to_have_count(3)
    assert selected.evaluate_all("cs => cs.map(c => c.dataset.key)") == wanted
    expect(page.locator(".selected-count")).to_have_text(
        "3 partitions selected: 2026-11-16 … 2026-11-18"
    )
    submit = page.locator("form.backfill-form button[type=submit]")
    expect(submit).to_have_text("Backfill 3 partitions")
    expect(submit).to_be_enabled()
    assert cells.count() >= 7
    shot(page, "selected")
    submit.click()

    page.wait_for_url(re.compile(r"/backfills/[0-9a-z]+$"))
    expect(page.locator("main h1 .badge")).to_be_visible()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:first-child")).to_have_text(wanted)
    shot(page, "backfill-started")

    def completed() -> bool:
        page.reload()
        return (
            page.locator(".progress-text").inner_text() == "3/3 done"
            and page.locator("main h1 .badge").inner_text() == "completed"
        )

    until(completed, timeout=60, what="backfill 3/3 done and completed")
    expect(rows.locator(".badge")).to_have_text(["succeeded"] * 3)
    shot(page, "backfill-completed")

    # The grid shows those days succeeded.
    page.goto(retail.url + "/pipelines/daily_sales")
    for key in wanted:
        expect(page.locator(f'#partitions .cell[data-key="{key}"]')).to_have_class(
            re.compile(r"\bstate-succeeded\b")
        )
    shot(page, "grid-after")


# -- 6. back button, stable URLs, and the 1280x800 viewport ---------------------------------


def assert_in_viewport(page: Page, names: list[str]) -> None:
    """The buttons (or button-like links) named so are shown without scrolling at 1280x800."""
    for name in names:
        target = page.locator("main").get_by_role("button", name=name, exact=True)
        if target.count() == 0:
            target = page.locator("main").get_by_role("link", name=name, exact=True)
        expect(target.first).to_be_visible()
        box = target.first.bounding_box()
        assert box is not None, name
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], (name, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], (name, box)
    # Nothing is wider than the window: no sideways scrolling of the page itself.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"the page is {width}px wide"


def test_back_button_urls_filters_and_viewport(page: Page, shot: Shots, gated: Served) -> None:
    ok_label, bad_label = "fine", "broken"
    (gated.project / f"{ok_label}.ready").write_text("ok")
    (gated.project / f"{ok_label}.go").write_text("go")
    ok = gated.launch("gated", params={"label": ok_label})
    bad = gated.launch("gated", params={"label": bad_label})
    gated.wait_run(ok, "succeeded")
    gated.wait_run(bad, "failed")

    gated.sign_in(page)
    page.goto(gated.url + "/")
    expect(page.locator("table.pipelines a.name")).to_have_text(["gated"])
    shot(page, "overview")
    page.locator("table.pipelines a.name", has_text="gated").click()
    expect(page).to_have_url(gated.url + "/pipelines/gated")
    assert_in_viewport(page, ["Launch run", "All runs"])
    shot(page, "pipeline")
    page.locator(f'table.runs a[href="/runs/{bad}"]').click()
    expect(page).to_have_url(f"{gated.url}/runs/{bad}")
    expect(page.locator(BADGE)).to_have_text("failed")
    assert_in_viewport(page, ["Re-run from failure", "New run"])
    shot(page, "run")

    page.go_back()
    expect(page).to_have_url(gated.url + "/pipelines/gated")
    expect(page.locator("main h1")).to_have_text("gated")
    page.go_back()
    expect(page).to_have_url(gated.url + "/")
    expect(page.locator("table.pipelines a.name")).to_have_text(["gated"])
    shot(page, "back-at-overview")
    page.go_forward()
    expect(page).to_have_url(gated.url + "/pipelines/gated")

    # The runs list: filtering by state puts the filter in the URL and narrows the list.
    page.goto(gated.url + "/runs?pipeline=gated")
    runs = page.locator("table.runs tbody tr")
    expect(runs.locator(f'a[href="/runs/{ok}"]')).to_have_count(1)
    expect(runs.locator(f'a[href="/runs/{bad}"]')).to_have_count(1)
    shot(page, "runs-all")
    page.locator("form.filters select[name=state]").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/runs\?.*\bstate=failed\b"))
    assert "pipeline=gated" in page.url
    expect(runs.locator(f'a[href="/runs/{bad}"]')).to_have_count(1)
    expect(runs.locator(f'a[href="/runs/{ok}"]')).to_have_count(0)
    expect(runs.locator(".badge")).not_to_have_count(0)
    states = runs.locator("td:nth-child(3) .badge").all_inner_texts()
    assert states and set(states) == {"failed"}, states
    expect(page.locator("form.filters select[name=state]")).to_have_value("failed")
    shot(page, "runs-failed")
    # The filtered list is a URL of its own: reloading or going back keeps it.
    page.reload()
    expect(page.locator("form.filters select[name=state]")).to_have_value("failed")
    page.go_back()
    expect(page).to_have_url(gated.url + "/runs?pipeline=gated")
    expect(runs.locator(f'a[href="/runs/{ok}"]')).to_have_count(1)
