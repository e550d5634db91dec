"""Bytes and server latency of the pipeline page at 10^5 hourly partitions, over real HTTP.

A throwaway project has a pipeline ``many`` with ``hourly(start="2015-01-01", tz="UTC")``
(about 104,600 partitions by the end of 2026) and ``--runs`` runs of it written straight into
its store's runs table (one transaction, no task rows: the page reads runs only), each for a
partition drawn at random, mostly succeeded, 5 % failed; a partition may have several runs,
its newest one giving its state (the kept ``partition_status`` is then filled as migration
0013 fills it from stored runs). Then ``legato web`` runs as a subprocess and each page kind
below is requested in turn over one kept-alive connection with a viewer's API token,
``--requests`` times each after ``--warmup`` untimed rounds. A figure is the wall time of one
request, body read; ``bytes`` is the HTML's size. Then Debian's Chromium (through Playwright,
as ``run_page.py`` does) loads the pages of ``LOADED`` ``--loads`` times each, each load in a
fresh context, timed from ``goto`` to the ``load`` event (the map's cells drawn). Usage:

    .venv/bin/python bench/partitions_page.py [--runs 100000] [--requests 30] [--loads 5]
        [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--out results.json]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from latency import tokens  # sibling scripts, as in overview.py
from overview import measure, scratch_run
from run_page import TARGET_LOAD_S, chromium_loads

from api import RUN_COLS, _fmt, _writes, backend_version, legato_web

TARGET_BYTES = 300_000
BATCH = 50_000  # rows written at a time
TARGET_P95_MS = 100.0
START = datetime(2015, 1, 1, tzinfo=UTC)
CODE = """
from legato import pipeline, task
from legato.partitions import hourly

@task
def one() -> int:
    return 1

@pipeline(partitions=hourly(start="2015-01-01", tz="UTC"))
def many():
    one()
"""
KINDS = {
    "page, whole range (months)": "/pipelines/many",
    "page, a year (days)": "/pipelines/many?zoom=2025",
    "page, a month (hours)": "/pipelines/many?zoom=2025-03",
    "page, a day (hours)": "/pipelines/many?zoom=2025-03-07",
    "page, only failed or missing, a month": "/pipelines/many?zoom=2025-03&state=failed"
    "&state=missing",
    "api: partitions summary by month": "/api/v1/pipelines/many/partitions/summary"
    "?granularity=month",
}

#: Pages loaded in Chromium: the whole range, and a month of hours with a state filter.
LOADED = {
    "whole range (months)": "/pipelines/many",
    "a month (hours), failed or missing": "/pipelines/many?zoom=2025-03&state=failed"
    "&state=missing",
}


def make_project(root: Path, store_url: str | None) -> Path:
    root.mkdir(parents=True)
    (root / "flows.py").write_text(CODE, encoding="utf-8")
    store = f'\n[store]\nurl = "{store_url}"\n' if store_url else ""
    (root / "legato.toml").write_text(
        f'[project]\nname = "partsbench"\nmodules = ["flows"]\n{store}', encoding="utf-8"
    )
    return root


def fill(ws: Any, n_runs: int, seed: int = 7) -> dict[str, Any]:
    """``n_runs`` runs of ``many`` over its partitions, in one transaction."""
    from legato.domain.ids import new_run_id
    from legato.store.schema import runs

    assert _writes(runs, RUN_COLS)
    store = ws.store
    pipe = ws.project.pipelines["many"]
    store.runs.save_snapshot("many", pipe.code_version, pipe.snapshot(), ws.clock())
    now = datetime.now(UTC)
    hours = int((now - START) / timedelta(hours=1))
    rng = random.Random(seed)
    engine = store._engine
    t0 = time.perf_counter()
    cols = ", ".join(RUN_COLS)
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        for start in range(0, n_runs, BATCH):
            rows = []
            for i in range(start, min(n_runs, start + BATCH)):
                h = rng.randrange(hours)
                key = (START + timedelta(hours=h)).isoformat(timespec="minutes")
                created = START + timedelta(hours=h + 1, seconds=i % 3600)
                state = "failed" if rng.random() < 0.05 else "succeeded"
                c = _fmt(created)
                f = _fmt(created + timedelta(seconds=5))
                rows.append((new_run_id(created, rng), "many", state, "{}", key,
                             pipe.code_version, c, c, f, None, None, None, None, 0, None, None,
                             0, int(created.timestamp() * 1_000_000), "backfill:bench", None))
            if engine.dialect.name == "sqlite":
                marks = ", ".join("?" * len(RUN_COLS))
                cur.executemany(f"INSERT INTO runs ({cols}) VALUES ({marks})", rows)
            else:
                with cur.copy(f"COPY runs ({cols}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(row)
        cur.close()
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE runs")
    # The runs went in behind the store's back: their partitions' status is filled as the
    # migration that added it fills it from the runs already stored.
    fill_status = importlib.import_module(
        "legato.store.migrations.versions.0013_partition_status"
    )
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(fill_status._FILL_SQLITE)
        else:
            conn.exec_driver_sql(fill_status._FILL_POSTGRESQL)
            conn.exec_driver_sql("ANALYZE partition_status")
    return {"runs": n_runs, "partitions": hours, "seconds": round(time.perf_counter() - t0, 1)}


def run(args: argparse.Namespace, tmp: Path, store_url: str | None) -> dict[str, Any]:
    import httpx

    from legato.services.workspace import Workspace

    project = make_project(tmp / "proj", store_url)
    with Workspace(project) as ws:
        print(f"filling {args.runs:,} runs ...", file=sys.stderr, flush=True)
        filled = fill(ws, args.runs)
        print(f"filled: {filled}", file=sys.stderr, flush=True)
        backend = backend_version(ws.store)
    auth = tokens(project)[0]  # a viewer's token
    load_before = os.getloadavg()
    with legato_web(project, tmp, auth) as (base, _), \
            httpx.Client(base_url=base, timeout=120, headers=auth) as client:
        results = measure(client, args.requests, args.warmup, KINDS, TARGET_P95_MS)
        loads = {
            kind: chromium_loads(base + path, auth, args.loads, "#partitions svg.pmap .cell", 0)
            for kind, path in LOADED.items()
        } if args.loads else {}
    return {
        "meta": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {platform.system()}",
            "backend": backend, **filled, "requests": args.requests, "warmup": args.warmup,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "results": results,
        "loads": loads,
    }


def report(out: dict[str, Any]) -> None:
    m = out["meta"]
    lines = [
        f"{m['machine']}; {m['backend']}; {m['partitions']:,} hourly partitions, {m['runs']:,} "
        f"runs; load {m['loadavg_before'][0]:.2f} -> {m['loadavg_after'][0]:.2f}; "
        f"{m['requests']} timed requests of each kind after {m['warmup']} untimed rounds",
        "",
        f"| request | p50 | p95 (< {TARGET_P95_MS:g} ms) | max | "
        f"body (< {TARGET_BYTES // 1000} KB) |",
        "|---|---|---|---|---|",
    ]
    for kind, r in out["results"].items():
        verdicts = ["met" if ok else "**MISSED**"
                    for ok in (r["met"], r["bytes"] < TARGET_BYTES)]
        lines.append(f"| {kind} | {r['p50']:.1f} ms | {r['p95']:.1f} ms: {verdicts[0]} | "
                     f"{r['max']:.1f} ms | {r['bytes'] / 1000:.0f} KB: {verdicts[1]} |")
    if out.get("loads"):
        lines += ["", "| Chromium, `goto` to `load` | median | best | "
                  f"worst (< {TARGET_LOAD_S:g} s) |", "|---|---|---|---|"]
        for kind, secs in out["loads"].items():
            worst = max(secs)
            lines.append(f"| {kind} | {statistics.median(secs):.2f} s | {min(secs):.2f} s | "
                         f"{worst:.2f} s: {'met' if worst < TARGET_LOAD_S else '**MISSED**'} |")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=30, help="timed requests of each kind")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument("--loads", type=int, default=5, help="Chromium loads of each page")
    ap.add_argument("--store-url", help="a PostgreSQL server/database: the store goes in a new "
                    "schema there, dropped at the end (default: SQLite in the project)")
    ap.add_argument("--out", type=Path, help="write the results as JSON to this file")
    args = ap.parse_args()
    report(scratch_run(args, "partitions", run))


if __name__ == "__main__":
    main()
