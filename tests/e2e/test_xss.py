"""Everything a user supplies is shown as text, never run: real Chromium visits every page that
shows param values, partition keys, task error messages and log lines carrying script
payloads, and nothing of them executes.

Each payload, if it ever ran, would set ``window.__pwned`` and fetch ``/pwned/...`` (the test
watches every request the page makes), and its inline script or handler would also be
refused by the Content-Security-Policy, which the page reports (``watch``). Either shows up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Request, expect

from tests.e2e.browser import VIEWPORT, watch, web_url
from tests.helpers import Daemons, cli, http_client, make_project, sign_in_link, wait_for

pytestmark = pytest.mark.slow

SCRIPT = "<script>window.__pwned='script';fetch('/pwned/script')</script>"
IMG = "<img src=x onerror=\"window.__pwned='img';fetch('/pwned/img')\">"
BREAKOUT = "\"'><svg onload=\"window.__pwned='svg';fetch('/pwned/svg')\">"
NOTE = SCRIPT + IMG + BREAKOUT  # a param value
KEYS = [f"k1{IMG}", f"k2{SCRIPT}", f"k3{BREAKOUT}"]  # partition keys (no "|", no "/")

CODE = f"""
import logging
from pathlib import Path

from legato import Context, pipeline, task
from legato.partitions import static

HERE = Path(__file__).parent
KEYS = {KEYS!r}


@task
def shout(ctx: Context, note: str) -> str:
    print(f"log line: {{note}}")
    logging.getLogger("xss").warning("logged: %s", note)
    return note


@task(retries=0)
def explode(ctx: Context, note: str) -> None:
    raise RuntimeError(f"failed with {{note}} in {{ctx.partition}}")


@task
def hold(ctx: Context, note: str) -> str:
    # Prints the payload, then waits for the test to open the gate: a run seen live.
    import time

    print(f"live line: {{note}}", flush=True)
    deadline = time.monotonic() + 120
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return note


@pipeline(partitions=static(KEYS), description={NOTE!r})
def xss(note: str = {NOTE!r}):
    explode(shout(note))


@pipeline
def held(note: str = "x"):
    hold(note)
"""


#: A resource whose name and setting carry the payloads (a TOML basic string is JSON's).
RESOURCE = f"""
[resources.{json.dumps(NOTE)}]
kind = "files"
url = "memory://xss"
note = {json.dumps(NOTE)}
"""


@dataclass
class Site:
    url: str
    failed: str  # a finished run whose task failed with a payload, logs full of them
    live: str  # a run still running, its log streaming a payload
    backfill: str
    queued: str  # a run waiting in the queue, of changed code
    project: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("xss")
    extra = "\n[daemon]\nmax_runs = 1\n" + RESOURCE
    project = make_project(root / "proj", CODE, workers=2, extra=extra)
    # A run executed here: its error message and logs carry the payloads.
    done = cli("run", "xss", "--param", f"note={NOTE}", "--partition", KEYS[0], "--json",
               project=project)
    assert done.returncode != 0, done.stdout + done.stderr
    failed = json.loads(done.stdout)["run"]["id"]
    # Changed code: the code page of the next run of xss shows this line in its diff.
    with open(project / "flows.py", "a", encoding="utf-8") as fh:
        fh.write(f"\n# changed: {NOTE}\n")
    daemons = Daemons(root)
    try:
        # One run at a time: the held run keeps the slot, so later runs wait in the queue.
        url = web_url(daemons.up(project))
        with http_client(url, project) as http:
            live = http.post("/api/v1/pipelines/held/runs", json={"params": {"note": NOTE}})
            assert live.status_code == 201, live.text
            live_id = live.json()["id"]
            wait_for(
                lambda: "live line" in http.get(
                    f"/api/v1/runs/{live_id}/tasks/hold/attempts/1/log"
                ).text,
                timeout=30,
                what="the held run's first log line",
            )
            backfill = http.post(
                "/api/v1/backfills",
                json={"pipeline": "xss", "partitions": KEYS, "all": True, "params": {"note": NOTE}},
            )
            assert backfill.status_code == 201, backfill.text
            queued = http.post(
                "/api/v1/pipelines/xss/runs", json={"params": {"note": NOTE}, "partition": KEYS[2]}
            )
            assert queued.status_code == 201, queued.text
        yield Site(url, failed, live_id, backfill.json()["id"], queued.json()["id"], project)
    finally:
        (project / "go").write_text("")
        daemons.stop_all()




def test_payloads_are_shown_as_text_and_never_run(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    requests: list[str] = []

    def heard(request: Request) -> None:
        requests.append(request.url)

    page.goto(sign_in_link(site.project, site.url))
    page.on("request", heard)
    visits = {
        "/": [],
        "/overview": [],
        "/runs": KEYS[:1],
        f"/runs?pipeline=xss&partition={KEYS[0]}": KEYS[:1],
        f"/runs/{site.failed}": [NOTE, KEYS[0], f"failed with {NOTE}"],
        f"/runs/{site.failed}?task=shout": [f"log line: {NOTE}", f"logged: {NOTE}"],
        f"/runs/{site.queued}/code": [f"# changed: {NOTE}"],
        f"/runs/{site.live}": [f"live line: {NOTE}"],
        f"/runs/{site.live}/live": [NOTE],  # the part the run page redraws as the run goes
        "/pipelines/xss": [NOTE],
        "/pipelines/xss/launch": [],
        "/backfills": [],
        f"/backfills/{site.backfill}": KEYS,
        "/queue": [KEYS[2]],
        "/resources": [NOTE, f"note = {NOTE}"],
    }
    try:
        for path, shown in visits.items():
            page.goto(site.url + path)
            page.wait_for_load_state("networkidle")
            body = page.locator("body")
            for text in shown:
                expect(body).to_contain_text(text)  # the payload, as the characters typed
            injected = page.locator("script:not([src]), img[src='x'], svg[onload], [onerror]")
            assert injected.count() == 0, path
            assert page.evaluate("window.__pwned") is None, path
            # A fetch('/pwned/...') or an <img src=x> that loaded (the page's own URL may hold
            # the payload in its query: only the path of a request counts).
            fired = [u for u in requests if re.search(r"^/pwned/|/x$", urlsplit(u).path)]
            assert not fired, path
            assert not problems, f"{path}: {problems}"
        # The partitions table holds the keys as attribute values and text; a click on a
        # key's cell shows it as text.
        page.goto(site.url + "/pipelines/xss")
        cells = page.locator("#partitions .cell[data-key]")
        assert cells.evaluate_all("els => els.map(e => e.dataset.key)") == KEYS
        cells.nth(1).click()
        expect(page.locator("#partitions .selected-count")).to_contain_text(KEYS[1])
        assert page.evaluate("window.__pwned") is None
        # The launcher's field holds the default value as a value, not as markup.
        page.goto(site.url + "/pipelines/xss/launch")
        expect(page.locator("#f-note")).to_have_value(NOTE)
        assert page.evaluate("window.__pwned") is None
        # A check's reason names the resource (its setting 'note' is not the kind's): text.
        page.goto(site.url + "/resources")
        page.get_by_role("button", name="Check all").click()
        page.wait_for_load_state("networkidle")
        expect(page.locator(".check-failed")).to_have_text("failed")
        expect(page.locator("td.check")).to_contain_text(f"resource {NOTE!r} (files)")
        assert page.evaluate("window.__pwned") is None
        # The live page: its log streams while the run goes on, and is still only text.
        page.goto(f"{site.url}/runs/{site.live}")
        expect(page.locator("#logs pre.log")).to_contain_text(f"live line: {NOTE}")
        assert page.evaluate("window.__pwned") is None
        assert not problems, problems
    finally:
        context.close()


def test_error_text_reaches_the_api_as_written(site: Site) -> None:
    # The proof above is only worth something if the payloads really are in what is shown.
    with http_client(site.url, site.project) as http:
        detail = http.get(f"/api/v1/runs/{site.failed}").json()
    assert detail["run"]["params"] == {"note": NOTE}
    assert detail["run"]["partition"] == KEYS[0]
    errors = [t.get("error") or "" for t in detail["tasks"]]
    assert any(f"failed with {NOTE}" in e for e in errors), errors

