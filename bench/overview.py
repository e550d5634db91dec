"""Latency of the overview page and ``GET /api/v1/overview`` over real HTTP, at 100,000 runs.

The history is bench/api.py's (its ``fill``: runs of four pipelines and two retired ones,
mostly succeeded, some failed and canceled, a few running and queued at the end, with their
task runs, attempts and events), written straight into a throwaway project's store. With the
default ``--days 7`` every one of the runs falls inside the overview's week, the worst case:
each request aggregates all of them. ``--days 365`` spreads them over a year (the week then
holds about 2 %). Then ``legato web`` runs as a subprocess and ``/overview`` (the HTML page)
and ``/api/v1/overview`` take turns over one kept-alive connection with a viewer's API token,
``--requests`` times each after ``--warmup`` untimed rounds. A figure is the wall time of one
request, body read. ``--explain`` also times each of the service's statements on its own and
prints its plan. Usage:

    .venv/bin/python bench/overview.py [--runs 100000] [--days 7] [--tasks-per-run 3]
        [--requests 50] [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--explain] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from latency import pct, tokens  # sibling scripts, as in api.py

from api import backend_version, fill_project, legato_web, make_project, pg_schema

TARGET_P95_MS = 300.0
KINDS = {"page: GET /overview": "/overview", "api: GET /api/v1/overview": "/api/v1/overview"}


def measure(
    client: Any, n: int, warmup: int, kinds: dict[str, str] = KINDS,
    target_ms: float = TARGET_P95_MS,
) -> dict[str, dict[str, Any]]:
    """Each of ``kinds`` (name: path) requested in turn, ``n`` timed rounds after ``warmup``;
    per kind its times, body size and whether p95 is under ``target_ms``."""
    times: dict[str, list[float]] = {k: [] for k in kinds}
    sizes: dict[str, int] = {}
    for i in range(warmup + n):
        for kind, path in kinds.items():
            t0 = time.perf_counter()
            resp = client.get(path)
            dt = time.perf_counter() - t0
            if resp.status_code != 200:
                raise SystemExit(f"{path}: HTTP {resp.status_code}: {resp.text[:500]}")
            if i >= warmup:
                times[kind].append(dt * 1000)
                sizes[kind] = len(resp.content)
    return {
        kind: {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "max": max(ms),
               "mean": statistics.fmean(ms), "bytes": sizes[kind],
               "met": pct(ms, 95) < target_ms}
        for kind, ms in times.items()
    }


def explain(project: Path, repeat: int = 5) -> list[dict[str, Any]]:
    """Each statement ``Overview.figures`` sends: its median time alone and its plan."""
    from sqlalchemy import event

    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    out = []
    with Workspace(project) as ws:
        engine = ws.store._engine
        seen: list[tuple[str, Any]] = []

        def grab(conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
            if stmt.lstrip().upper().startswith("SELECT") and "runs" in stmt:
                seen.append((stmt, params))

        overview = ws.door(Actor.local_user()).overview
        event.listen(engine, "before_cursor_execute", grab)
        try:
            overview.figures()
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        by_text: dict[str, dict[str, Any]] = {}
        with engine.connect() as conn:
            for stmt, params in seen:
                ms = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    conn.exec_driver_sql(stmt, params).all()
                    ms.append((time.perf_counter() - t0) * 1000)
                text = " ".join(stmt.split())[:160]
                if text not in by_text:
                    if engine.dialect.name == "sqlite":
                        plan = [str(r[-1]) for r in
                                conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params)]
                    else:
                        plan = [str(r[0]) for r in
                                conn.exec_driver_sql("EXPLAIN ANALYZE " + stmt, params)]
                    by_text[text] = {"sql": text, "times": 0, "median_ms": 0.0, "plan": plan}
                # The same statement sent once per hour or day: its times add up.
                by_text[text]["times"] += 1
                by_text[text]["median_ms"] += statistics.median(ms)
        out = [dict(v, median_ms=round(v["median_ms"], 2)) for v in by_text.values()]
    return out


def run(args: argparse.Namespace, tmp: Path, store_url: str | None) -> dict[str, Any]:
    import httpx

    from legato.services.workspace import Workspace

    project = make_project(tmp / "proj", args.tasks_per_run, store_url)
    with Workspace(project) as ws:
        filled = fill_project(ws, args.runs, args.tasks_per_run, args.days)
        backend = backend_version(ws.store)
    profile = explain(project) if args.explain else None
    auth = tokens(project)[0]  # a viewer's token
    load_before = os.getloadavg()
    with legato_web(project, tmp, auth) as (base, _), \
            httpx.Client(base_url=base, timeout=60, headers=auth) as client:
        week = client.get("/api/v1/overview").json()
        in_week = sum(h["total"] for h in week["last_week"])
        results = measure(client, args.requests, args.warmup)
    return {
        "meta": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {platform.system()}",
            "backend": backend, "runs": filled["runs"], "runs_in_week": in_week,
            "days": args.days, "requests": args.requests, "warmup": args.warmup,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "results": results,
        "sql_profile": profile,
    }


def report(out: dict[str, Any]) -> None:
    m = out["meta"]
    print(f"{m['machine']}; {m['backend']}; {m['runs']:,} runs over {m['days']:g} days, "
          f"{m['runs_in_week']:,} of them in the overview's week; load "
          f"{m['loadavg_before'][0]:.2f} -> {m['loadavg_after'][0]:.2f}")
    print(f"{m['requests']} requests of each kind after {m['warmup']} untimed rounds")
    print()
    print("| request | p50 | p95 | max | body | p95 target |")
    print("|---|---|---|---|---|---|")
    for kind, r in out["results"].items():
        verdict = "met" if r["met"] else "**MISSED**"
        print(f"| {kind} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['max']:.1f} ms | "
              f"{r['bytes'] / 1024:.0f} KiB | < {TARGET_P95_MS:g} ms: {verdict} |")
    for s in out.get("sql_profile") or []:
        print(f"\n{s['median_ms']:.1f} ms ({s['times']} statement(s))  {s['sql']}")
        for line in s["plan"]:
            print(f"    {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=7.0, help="span of the runs' created_at")
    ap.add_argument("--tasks-per-run", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50, help="timed requests of each kind")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    ap.add_argument("--store-url", help="a PostgreSQL server/database: the store goes in a new "
                    "schema there, dropped at the end (default: SQLite in the project)")
    ap.add_argument("--explain", action="store_true", help="time and plan each statement")
    ap.add_argument("--out", type=Path, help="write the results as JSON to this file")
    args = ap.parse_args()
    if args.runs < 20:
        raise SystemExit("--runs must be at least 20")
    report(scratch_run(args, "overview", run))


def scratch_run(
    args: argparse.Namespace, name: str,
    run: Callable[[argparse.Namespace, Path, str | None], dict[str, Any]],
) -> dict[str, Any]:
    """``run(args, folder, store_url)`` in a scratch folder (and, with ``--store-url``, a
    scratch PostgreSQL schema), both removed after; its results with the command that made
    them, written to ``--out`` if given."""
    tmp = Path(tempfile.mkdtemp(prefix=f"legato-{name}bench-"))
    try:
        if args.store_url:
            with pg_schema(args.store_url, False) as url:
                out = run(args, tmp, url)
        else:
            out = run(args, tmp, None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["meta"]["command"] = " ".join([".venv/bin/python", sys.argv[0], *sys.argv[1:]])
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
