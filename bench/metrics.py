"""Latency of ``GET /metrics`` (Prometheus' scrape) on a store holding a long history.

The store is filled as bench/api.py fills it (its ``fill``: ``--runs`` runs of
``--tasks-per-run`` task runs each, with their attempts and events, written straight into the
store's tables; by default 100,000 runs and 1,000,000 task runs, a few of them queued and
running at the end), plus two pools with slots held. Then a real ``legato web`` serves it
as a subprocess and ``/metrics`` is requested ``--requests`` times over one kept-alive
connection with a viewer's API token (as Prometheus scrapes), after ``--warmup`` untimed
requests. A figure is the wall time of one request, body read. Target: p95 under 50 ms.

    .venv/bin/python bench/metrics.py [--runs 100000] [--tasks-per-run 10] [--requests 300]
        [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test]  # a new schema there

``--hot-path N`` measures instead what counting costs a run: each metric operation of the
driver's hot path timed alone, then chain-1000 (bench/core.py's) N times in process, with
the driver's CPU time beside the wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from latency import pct, tokens

from api import backend_version, fill, legato_web, make_project, pg_schema  # the sibling script

TARGET_MS = 50.0
POOLS = "\n[pools]\nwarehouse = 4\napi = 2\n"


def prepare(root: Path, runs: int, tasks: int, store_url: str | None) -> dict[str, object]:
    """The project with its history and pools; what was written."""
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    project = make_project(root, tasks, store_url)
    with open(project / "legato.toml", "a", encoding="utf-8") as fh:
        fh.write(POOLS)
    with Workspace(project) as ws:
        store = ws.store
        versions = {}
        for name, pipe in ws.project.pipelines.items():
            versions[name] = pipe.code_version
            store.runs.save_snapshot(name, pipe.code_version, pipe.snapshot(), ws.clock())
        print(f"filling {runs:,} runs x {tasks} task runs ({backend_version(store)}) ...",
              file=sys.stderr, flush=True)
        filled = fill(store, runs, tasks, 365.0, project, versions)
        ws.door(Actor.local_user()).project.apply_pools()
        running = store.runs.runs_in_state("running", limit=3)
        for i, run in enumerate(running):
            store.pools.claim_pool_slot("warehouse", run.id, f"step{i}", ws.clock())
        active = store.browse.active_counts()
        return {"backend": backend_version(store), "fill": filled,
                "active": {f"{p}/{s}": n for (p, s), n in sorted(active.items())}}


def measure(project: Path, requests: int, warmup: int) -> dict[str, object]:
    import httpx

    auth = tokens(project)[0]
    load_before = os.getloadavg()
    with legato_web(project, project.parent, auth) as (base, _), \
            httpx.Client(base_url=base, timeout=60, headers=auth) as c:
        for _ in range(warmup):
            c.get("/metrics").raise_for_status()
        lat: list[float] = []
        body = b""
        for _ in range(requests):
            t0 = time.perf_counter()
            answer = c.get("/metrics")
            body = answer.content
            lat.append((time.perf_counter() - t0) * 1000)
            answer.raise_for_status()
    samples = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    queued = [line for line in samples if line.startswith(("legato_runs_queued{",
                                                           "legato_runs_running{"))]
    return {
        "p50_ms": round(pct(lat, 50), 2), "p95_ms": round(pct(lat, 95), 2),
        "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat), 2),
        "mean_ms": round(statistics.fmean(lat), 2), "samples": len(samples),
        "bytes": len(body), "store_gauges": queued,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def hot_path(repeat: int) -> None:
    """What the metrics add to a run's hot path: each operation timed alone, then chain-1000
    in process with the driver's CPU time (runs on older code too, through PYTHONPATH, to
    compare: then only the chain is timed)."""
    import importlib.util
    import timeit

    if importlib.util.find_spec("legato.observability.metrics") is not None:
        from legato.observability import metrics

        inc = metrics.ATTEMPTS.labels("bench", "succeeded").inc
        seen = metrics.ATTEMPT_SECONDS.labels("bench", "noop").observe
        step = metrics.STORE_SECONDS.labels("step").observe
        n = 200_000
        for name, op in (("counter inc", inc), ("attempt histogram observe", lambda: seen(0.01)),
                         ("store step observe", lambda: step(0.0007))):
            best = min(timeit.repeat(op, number=n, repeat=5)) / n * 1e6
            print(f"{name}: {best:.2f} us")
    import core  # the sibling script's chain-1000

    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="legato-bench-hot-") as tmp:
        project = core.make_project(Path(tmp) / "b", 2)
        with Workspace(project) as ws:
            ws.executor()
            _ = ws.store
            runs = ws.door(Actor.local_user()).runs
            runs.run_pipeline("chain_1000")  # untimed: warms the store and the workers
            cpu, wall = [], []
            for _ in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                runs.run_pipeline("chain_1000")
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
    print(f"chain_1000 x {repeat}: driver CPU best {min(cpu):.3f} median "
          f"{statistics.median(cpu):.3f} s; wall best {min(wall):.3f} median "
          f"{statistics.median(wall):.3f} s (load {os.getloadavg()[0]:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--tasks-per-run", type=int, default=10)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--store-url", help="a PostgreSQL server/database: a new schema there")
    ap.add_argument("--hot-path", type=int, metavar="N",
                    help="instead: the metrics' cost per operation, and chain-1000 N times")
    args = ap.parse_args()
    if args.hot_path:
        hot_path(args.hot_path)
        return
    schema = pg_schema(args.store_url, False) if args.store_url else nullcontext(None)
    with tempfile.TemporaryDirectory(prefix="legato-bench-metrics-") as tmp, schema as url:
        project = Path(tmp) / "proj"
        made = prepare(project, args.runs, args.tasks_per_run, url)
        result = measure(project, args.requests, args.warmup)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs,"
          f" Python {platform.python_version()}, {made['backend']}")
    print(f"history: {made['fill']}")
    print(f"queued and running now: {made['active']}")
    for key, val in result.items():
        print(f"{key}: {val}")
    verdict = "met" if float(result["p95_ms"]) < TARGET_MS else "MISSED"  # type: ignore[arg-type]
    print(f"target p95 < {TARGET_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
