"""Latency of the asset catalog, one asset and the lineage graph at 10,000 assets and
1,000,000 materializations.

A throwaway project declares ``--pipelines`` pipelines of ``--per-pipeline`` chained tasks,
each task producing its own asset (100 x 100 = 10,000 assets) and the first of each reading
one of the previous pipeline's, so the graph spans pipelines. ``--materializations`` rows
(spread evenly over the assets, each asset over ``--partitions`` daily partitions, each with
a metadata of row count, three columns and a two-row preview, about 300 bytes of JSON) are
written straight into the project's store. Then the API and the web UI are served in this
process (FastAPI's TestClient, a viewer's API token) and each request below is timed
``--requests`` times after ``--warmup`` untimed rounds; a figure is the wall time of one
request, body read. Usage:

    .venv/bin/python bench/assets.py [--pipelines 100] [--per-pipeline 100]
        [--materializations 1000000] [--partitions 50] [--requests 30]
        [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TARGET_P95_MS = 100.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)

MODULE = '''
from datetime import timedelta

from legato import Asset, pipeline, task
from legato.partitions import daily

PIPELINES, PER, FRESHNESS = {pipelines}, {per}, {freshness}


def _task(p, i):
    def step(x=None):
        return 1
    step.__name__ = f"t{{i}}"
    step.__qualname__ = step.__name__
    consumes = [f"p{{p - 1}}.a{{PER - 1}}"] if i == 0 and p > 0 else None
    lag = None if FRESHNESS is None else timedelta(seconds=FRESHNESS)
    return task(produces=Asset(f"p{{p}}.a{{i}}", freshness=lag), consumes=consumes)(step)


def _pipeline(p):
    tasks = [_task(p, i) for i in range(PER)]

    def flow():
        out = None
        for t in tasks:
            out = t(out) if out is not None else t()

    flow.__name__ = flow.__qualname__ = f"p{{p}}"
    return pipeline(partitions=daily(start="2026-01-01"))(flow)


for _p in range(PIPELINES):
    globals()[f"p{{_p}}"] = _pipeline(_p)
'''


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fill(store: Any, keys: list[str], total: int, partitions: int) -> float:
    """Write ``total`` materializations over ``keys`` in batches; seconds taken."""
    from legato.domain.materializations import NewMaterialization

    per_key = total // len(keys)
    began = time.perf_counter()
    batch: list[NewMaterialization] = []
    n = 0
    for round_ in range(per_key):
        day = (T0 + timedelta(days=round_ % partitions)).date().isoformat()
        for key in keys:
            n += 1
            meta = {
                "rows": 1000 + n % 977,
                "columns": [{"name": "id", "type": "int64"}, {"name": "amount", "type": "double"},
                            {"name": "day", "type": "date32[day]"}],
                "bytes": 48_000 + n % 4096, "bytes_exact": True,
                "preview": [{"id": 1, "amount": 12.5, "day": day},
                            {"id": 2, "amount": 7.25, "day": day}],
            }  # fmt: skip
            batch.append(NewMaterialization(key, day, key.split(".")[0], f"run{n:020d}", "t",
                                            T0 + timedelta(seconds=n), meta))  # fmt: skip
            if len(batch) == 20_000:
                store.assets.record(batch)
                batch = []
    if batch:
        store.assets.record(batch)
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipelines", type=int, default=100)
    ap.add_argument("--per-pipeline", type=int, default=100)
    ap.add_argument("--materializations", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=50)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--store-url", default=None)
    ap.add_argument("--freshness", type=float, default=86400.0,
                    help="every asset's freshness policy in seconds (0: none)")
    args = ap.parse_args()

    from legato.services.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="legato-bench-assets-") as tmp:
        root = Path(tmp)
        toml = '[project]\nname = "assets"\nmodules = ["flows"]\n'
        if args.store_url:
            toml += f'\n[store]\nurl = "{args.store_url}"\n'
        (root / "legato.toml").write_text(toml)
        (root / "flows.py").write_text(
            MODULE.format(pipelines=args.pipelines, per=args.per_pipeline,
                          freshness=args.freshness or None)
        )
        began = time.perf_counter()
        ws = Workspace(root)
        keys = sorted(a for a in _graph_keys(ws))
        load_s = time.perf_counter() - began
        print(f"loaded {len(ws.project.pipelines)} pipelines, {len(keys)} assets "
              f"in {load_s:.1f}s", flush=True)  # fmt: skip
        fill_s = fill(ws.store, keys, args.materializations, args.partitions)
        print(f"wrote {args.materializations:,} materializations in {fill_s:.0f}s", flush=True)
        figures = _measure(ws, keys, args)
        ws.close()
    figures["machine"] = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "backend": "postgresql" if args.store_url else "sqlite",
        "assets": len(keys), "materializations": args.materializations,
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "freshness_s": args.freshness,
    }  # fmt: skip
    print(json.dumps(figures, indent=2))


def _graph_keys(ws: Any) -> list[str]:
    from legato.definitions.asset_graph import asset_graph

    return list(asset_graph(ws.project.pipelines.values()).nodes)


def _measure(ws: Any, keys: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from legato.server.app import create_app
    from legato.services.actor import Actor

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        from fastapi.testclient import TestClient

    admin = ws.door(Actor.local_user())
    token = admin.accounts.create_token("bench", "viewer").token
    app = create_app(admin, allowed_hosts=["testserver"])
    middle = keys[len(keys) // 2]
    requests = {
        "GET /api/v1/assets (first page, 200 assets)": "/api/v1/assets",
        "GET /api/v1/assets?limit=1000&offset=5000": "/api/v1/assets?limit=1000&offset=5000",
        f"GET /api/v1/assets/{{key}} ({middle})": f"/api/v1/assets/{middle}",
        "GET /api/v1/assets/{key}/materializations": f"/api/v1/assets/{middle}/materializations",
        "GET /api/v1/assets?stale=true (every policy judged, first page)":
            "/api/v1/assets?stale=true",
        "GET /api/v1/lineage (every asset)": "/api/v1/lineage",
        "GET /api/v1/lineage?focus={key}&depth=2": f"/api/v1/lineage?focus={middle}&depth=2",
        "GET /lineage (web: the first 150 drawn)": "/lineage",
        "GET /lineage?focus={key} (web)": f"/lineage?focus={middle}",
        "GET /assets?stale=true (web)": "/assets?stale=true",
        "GET /assets (web: the catalog's first page, 100 assets)": "/assets",
        "GET /assets?offset=5000 (web)": "/assets?offset=5000",
        "GET /assets?search=p42. (web)": "/assets?search=p42.",
        f"GET /assets/{{key}} (web: {middle}, chart and 50 materializations)": f"/assets/{middle}",
    }
    out: dict[str, Any] = {}
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for label, path in requests.items():
            times = []
            for i in range(args.warmup + args.requests):
                t0 = time.perf_counter()
                r = client.get(path)
                dt = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
                if i >= args.warmup:
                    times.append(dt)
            out[label] = {"p50": round(pct(times, 50), 1), "p95": round(pct(times, 95), 1),
                          "max": round(max(times), 1), "mean": round(statistics.fmean(times), 1),
                          "bytes": len(r.content), "p95_under_100ms": pct(times, 95) < 100}
            print(label, out[label], flush=True)
        # The service alone, for the whole catalog (what `legato assets` reads).
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            admin.assets.catalog()
            times.append((time.perf_counter() - t0) * 1000)
        out["door.assets.catalog() (every asset)"] = {"p50": round(pct(times, 50), 1),
                                                      "max": round(max(times), 1)}
        print(out["door.assets.catalog() (every asset)"], flush=True)
    return out


if __name__ == "__main__":
    main()
