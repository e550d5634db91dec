"""What resources add to each attempt: the bytes they add to a pickled AttemptSpec (the
environment's tables travel with every attempt that may use them), and the time a task's
second and later uses of an opened resource take (a cache hit in the worker process).

The tables are those of a project with four resources of the shapes a real one has (a SQL
URL with a secret, an HTTP API with headers, a files URL, a DuckDB file with a pool). The
kind is a stand-in whose open() returns at once: what is measured is Legato's own lookup.
Usage:

    .venv/bin/python bench/resources.py [--repeat 100000]
"""

from __future__ import annotations

import argparse
import pickle
import time
from typing import Any

from legato.executors.interface import AttemptSpec, Value
from legato.resources.kind import ResourceKind
from legato.resources.opened import Declared, OpenResources, close_all


class Instant(ResourceKind):
    """Opens nothing: the client is its settings."""

    kind = "instant"

    def open(self) -> dict[str, Any]:
        return dict(self.settings)


KIND = f"{__name__}:Instant"
TABLES = {
    "shop_db": {
        "kind": KIND,
        "url": "postgresql://shop:${secret:shop_db_password}@${env:SHOP_DB_HOST}:5432/shop",
        "pool_size": 5,
    },
    "rates_api": {
        "kind": KIND,
        "base_url": "https://rates.example/v2",
        "headers": {"Authorization": "Bearer ${secret:rates_token}", "Accept": "application/json"},
        "timeout": 10,
        "retries": 5,
    },
    "drop": {"kind": KIND, "url": "s3://shop-drop/incoming/"},
    "warehouse": {"kind": KIND, "path": "warehouse.duckdb", "pool": "warehouse"},
}


def spec(declared: Declared | None) -> AttemptSpec:
    return AttemptSpec(
        run_id="2026-12-06T05-00-00-abcdef",
        pipeline="nightly_sales",
        node="load_sales",
        task_key="load_sales",
        map_index=None,
        attempt=1,
        args=(Value([1, 2, 3]),),
        kwargs=(),
        params={"day": "2026-12-06"},
        partition="2026-12-06",
        result_key="2026-12-06T05-00-00-abcdef/load_sales",
        log_path="/srv/legato/.legato/logs/2026-12-06T05-00-00-abcdef/load_sales.1.log",
        timeout=600.0,
        resources=declared,
        resource_args=(("warehouse", "warehouse"),) if declared else (),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=100_000)
    args = parser.parse_args()
    declared = Declared.of(TABLES)
    without = len(pickle.dumps(spec(None)))
    with_tables = len(pickle.dumps(spec(declared)))
    print(f"pickled AttemptSpec: {without} bytes without resources, {with_tables} with "
          f"{len(TABLES)} declared (+{with_tables - without})")
    OpenResources(declared)["warehouse"]  # opened once: every later use is a cache hit
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.repeat):
            OpenResources(declared)["warehouse"]
        best = min(best, (time.perf_counter() - start) / args.repeat)
    print(f"an attempt's view of its resources and one opened resource from it: "
          f"{best * 1e6:.2f} µs (best of 5 x {args.repeat})")
    close_all()


if __name__ == "__main__":
    main()
