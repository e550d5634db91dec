"""The run page of a big fan: its size, the server's time and Chromium's load time.

For each ``--tasks`` count, a throwaway project holds a fan (a root, N leaves called in a loop,
one of which fails, and a join); ``legato run`` runs it once on the local pool, then
``legato web`` serves it and, over one kept-alive connection with a viewer's API token,
``GET /runs/ID`` is timed ``--requests`` times after ``--warmup`` untimed ones (body read),
as are ``GET /runs/ID/changes?after=LAST`` (the live poll when nothing changed) and the page
with the leaves' group expanded (every leaf drawn, which is what the page drew before the
graph folded look-alike tasks). Then Debian's Chromium (through Playwright) loads the page
``--loads`` times, each in a fresh context, timed from ``goto`` to the ``load`` event. Usage:

    .venv/bin/python bench/run_page.py [--tasks 1000 10000] [--requests 30] [--loads 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core import make_project
from latency import pct, tokens

from api import legato_web

TARGET_BYTES = 500_000
TARGET_LOAD_S = 1.0
CODE = """
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@task
def leaf(root, i: int) -> int:
    if i == 7:
        raise ValueError("leaf 7 broke")
    return i


@pipeline
def fan():
    root = noop()
    noop(*[leaf(root, i) for i in range({n})])
"""


def fan_run(project: Path) -> tuple[str, int]:
    """Run the fan once; its run id and newest event id."""
    from legato.services.workspace import Workspace

    legato = str(Path(sys.executable).parent / "legato")
    subprocess.run([legato, "run", "fan", "-q", "--project", str(project)],
                   capture_output=True, check=False)
    with Workspace(project) as ws:
        run = ws.store.browse.list_runs(limit=1)[0]
        return run.id, ws.store.browse.run_last_event_id(run.id)


def timed(client: Any, path: str, requests: int, warmup: int) -> tuple[list[float], int]:
    size = 0
    for _ in range(warmup):
        client.get(path)
    lat = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = client.get(path)
        size = len(r.content)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text[:200]
    return lat, size


def chromium_loads(
    url: str, auth: dict[str, str], loads: int, drawn: str = "g.group[data-group]", count: int = 1
) -> list[float]:
    """Seconds from ``goto`` to the ``load`` event of ``url``, each load in a fresh context,
    the page checked to show ``count`` elements matching ``drawn`` (at least, if 0)."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        for _ in range(loads):
            context = browser.new_context(extra_http_headers=auth)
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(url, wait_until="load")
            out.append(time.perf_counter() - t0)
            found = page.locator(drawn).count()
            assert found == count if count else found > 0, (url, drawn, found)
            context.close()
        browser.close()
    return out


def one(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import httpx

    project = make_project(tmp / f"fan{n}", 2, CODE.format(n=n))
    run_id, last = fan_run(project)
    auth, _ = tokens(project)
    with legato_web(project, tmp, auth) as (base, _), httpx.Client(
        base_url=base, headers=auth, timeout=120
    ) as client:
        page, size = timed(client, f"/runs/{run_id}", args.requests, args.warmup)
        poll, poll_size = timed(client, f"/runs/{run_id}/changes?after={last}", args.requests,
                                args.warmup)
        _, every_size = timed(client, f"/runs/{run_id}?expand=leaf", 1, 0)
        loads = chromium_loads(f"{base}/runs/{run_id}", auth, args.loads)
    return {
        "tasks": n + 2,
        "bytes": size,
        "p50_ms": pct(page, 50) * 1000,
        "p95_ms": pct(page, 95) * 1000,
        "poll_bytes": poll_size,
        "poll_p95_ms": pct(poll, 95) * 1000,
        "expanded_bytes": every_size,
        "load_median_s": statistics.median(loads),
        "load_best_s": min(loads),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--loads", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="legato-run-page-") as t:
        rows = [one(n, args, Path(t)) for n in args.tasks]
    print(f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| tasks | page | server p50 / p95 | Chromium load median (best) | idle poll p95 "
          "| every leaf drawn |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        ok = r["bytes"] < TARGET_BYTES and r["load_median_s"] < TARGET_LOAD_S
        print(f"| {r['tasks']:,} | {r['bytes'] / 1000:.0f} KB | {r['p50_ms']:.0f} / "
              f"{r['p95_ms']:.0f} ms | {r['load_median_s']:.2f} s ({r['load_best_s']:.2f} s) "
              f"| {r['poll_p95_ms']:.0f} ms, {r['poll_bytes'] / 1000:.1f} KB "
              f"| {r['expanded_bytes'] / 1e6:.1f} MB |" + ("" if ok else " over target"))


if __name__ == "__main__":
    main()
