"""Per-task overhead of the Dask executor against the local process pool.

Two workloads of no-op tasks, each run through both executors with the same number of
workers on the default durable store (SQLite, WAL):

* ``fan_N``: N independent tasks (every worker busy): throughput, time per task.
* ``chain_M``: M tasks in a line (one runs at a time): the round trip of one attempt,
  from the driver handing it over to the driver recording its outcome.

The Dask executor runs on a ``LocalCluster`` it starts (``workers`` processes, one thread
each); the cluster's start is outside the figures, as the local pool's fork is (see
``time_runs`` in bench/core.py, whose project and timing code this script reuses). Usage:

    .venv/bin/python bench/executors.py [--tasks 200] [--chain 50] [--repeat 3] [--workers 2]

Prints one Markdown row per executor and workload: best and median wall time of the
repeats, and the best per task; then, for reference, what Dask alone takes for one trivial
task (``client.submit(...).result()`` on a LocalCluster of the same shape, median of 200).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from core import make_project, time_runs  # the sibling script: one copy of each

CODE = '''
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@pipeline
def fan_{tasks}():
    for _ in range({tasks}):
        noop()


@pipeline
def chain_{chain}():
    x = noop()
    for _ in range({chain} - 1):
        x = noop(x)
'''


def _noop() -> None:
    return None


def bare_dask_round_trip(workers: int, n: int = 200) -> float:
    """Median seconds of ``client.submit(f).result()`` for a trivial ``f``, Dask alone."""
    import time

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
    with cluster, Client(cluster) as client:
        times = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            client.submit(_noop, pure=False, key=f"noop-{i}").result()
            if i >= 10:  # the first ones warm the connections up
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=200, help="independent tasks of fan_N")
    ap.add_argument("--chain", type=int, default=50, help="tasks in the line of chain_M")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    names = [f"fan_{args.tasks}", f"chain_{args.chain}"]
    counts = {names[0]: args.tasks, names[1]: args.chain}
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="legato-bench-") as tmp:
        for kind in ("local", "dask"):
            project = make_project(
                Path(tmp) / kind, args.workers, CODE.format(tasks=args.tasks, chain=args.chain)
            )
            # LEGATO_EXECUTOR picks the executor as a user would, without another toml.
            os.environ["LEGATO_EXECUTOR"] = kind
            try:
                results[kind] = time_runs(project, names, args.repeat)
            finally:
                del os.environ["LEGATO_EXECUTOR"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, workers={args.workers}, repeat={args.repeat}")
    print("| executor | workload | best | median | per task (best) |")
    print("|---|---|---|---|---|")
    for name in names:
        for kind, by_name in results.items():
            times = by_name[name]
            best = min(times)
            print(f"| {kind} | {name} | {best:.3f} s | {statistics.median(times):.3f} s | "
                  f"{best / counts[name] * 1000:.2f} ms |")
    bare = bare_dask_round_trip(args.workers)
    print(f"\nDask alone, one trivial task submitted and its result fetched: {bare * 1000:.2f} ms")


if __name__ == "__main__":
    main()
