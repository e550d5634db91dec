"""Take the web UI screenshots of the docs (docs/images/ui-*.png) from a real `legato up`.

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--keep]

Copies examples/retail_orders to a temporary folder, starts `legato up` on a free port there,
makes some history through the JSON API (daily_sales runs of a few days, one without a
partition, one whose min_amount leaves no order, and a backfill of two days), waits until
every run has finished, then saves at 1280x800, with Chromium driven by Playwright:

- ui-pipelines.png: the overview of the pipelines
- ui-pipeline.png:  daily_sales's page (graph, partitions grid, schedule, runs), whole page
- ui-run.png:       a finished daily_sales run (graph, timeline, tasks, log), whole page

The daemon is stopped afterwards, and the temporary copy removed unless ``--keep``.
Needs Chromium at /usr/bin/chromium (or ``--chromium PATH``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "retail_orders"
LEGATO = str(Path(sys.executable).parent / "legato")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FINISHED = {"succeeded", "failed", "canceled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(cond: Any, timeout: float, what: str) -> Any:
    """Poll ``cond()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: {what} did not happen within {timeout:g}s")
        time.sleep(0.25)


class Daemon:
    """`legato up` in ``project``, its output in ``log``."""

    def __init__(self, project: Path, log: Path) -> None:
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [LEGATO, "up", "--project", str(project), "--port", str(free_port())],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def url(self) -> str:
        def printed() -> str | None:
            if self.proc.poll() is not None:
                raise SystemExit(f"screenshots: legato up exited:\n{self.log.read_text()}")
            found = re.search(r"web UI at (http://\S+?)/?\s", self.log.read_text(errors="replace"))
            return found.group(1) if found else None

        return str(wait(printed, 60, "legato up printing its URL"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def make_history(api: httpx.Client) -> None:
    """A few finished runs and a backfill, as a project that has been used for a while."""

    def launch(**body: Any) -> str:
        res = api.post("/api/v1/pipelines/daily_sales/runs", json=body)
        res.raise_for_status()
        return str(res.json()["id"])

    def finished(run_id: str) -> bool:
        res = api.get(f"/api/v1/runs/{run_id}")
        res.raise_for_status()
        return res.json()["run"]["state"] in FINISHED

    launched = []
    for day in ("2026-11-17", "2026-11-18", "2026-11-19"):
        launched.append(launch(partition=day))
        wait(lambda: finished(launched[-1]), 120, f"the run of {day}")
    # A min_amount above every order: a day with nothing to load.
    launched.append(launch(partition="2026-11-20", params={"min_amount": 1_000_000}))
    launched.append(launch(partition="2026-11-20", params={"min_amount": 10}))
    launched.append(launch())  # no partition: every day
    res = api.post(
        "/api/v1/backfills",
        json={"pipeline": "daily_sales", "partitions": ["2026-11-14", "2026-11-15"]},
    )
    res.raise_for_status()
    backfill = res.json()["id"]

    def all_done() -> bool:
        b = api.get(f"/api/v1/backfills/{backfill}").json()
        runs = api.get("/api/v1/runs", params={"limit": 500}).json()["runs"]
        busy = [r for r in runs if r["state"] not in FINISHED]
        return b["state"] == "completed" and not busy and all(finished(r) for r in launched)

    # store_reports follows each success of daily_sales: wait for those too.
    time.sleep(1)
    wait(all_done, 300, "every run finishing")


def shoot(page: Page, url: str, path: Path, *, full_page: bool) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(f"screenshots: no Chromium at {args.chromium} (use --chromium PATH)")

    tmp = Path(tempfile.mkdtemp(prefix="legato-screenshots-"))
    project = tmp / "retail_orders"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".legato", "__pycache__", "*.pyc")
    )
    daemon = Daemon(project, tmp / "legato-up.log")
    try:
        base = daemon.url()
        print(f"legato up serves {base}/ (project copied to {project})")
        with httpx.Client(base_url=base, timeout=30) as api:
            make_history(api)
            runs = api.get(
                "/api/v1/runs", params={"pipeline": "daily_sales", "state": "succeeded"}
            ).json()["runs"]
        shown = next(r for r in runs if r["partition"] and r["params"].get("min_amount"))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            out = args.out
            shoot(page, f"{base}/", out / "ui-pipelines.png", full_page=False)
            shoot(page, f"{base}/pipelines/daily_sales", out / "ui-pipeline.png", full_page=True)
            run_url = f"{base}/runs/{shown['id']}?task=load_daily_sales"
            shoot(page, run_url, out / "ui-run.png", full_page=True)
            browser.close()
    finally:
        daemon.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
