"""1,000 queued one-task runs through one `legato scheduler` (SQLite and PostgreSQL), and two
schedulers against one on PostgreSQL (issue 17).

A throwaway project (bench/ha.py's, with a pipeline of ``--tasks`` trivial tasks, 1 by
default) gets ``--runs`` queued runs first, as `legato submit` makes them; then 1 or 2
`legato scheduler` processes start and drain the queue. Two figures per measurement, both
ends as the store records them:

- *wall*: from just before the first scheduler process was started to the last run's end
  (the scheduler's start-up included: what a user waits);
- *span*: from the first run's start to the last run's end (the draining alone);
- *CPU*: user + system time of the scheduler processes and their workers, start-up included,
  and the CPU time the whole machine was busy meanwhile (every process: PostgreSQL's, and
  anyone else's on a shared machine); 2 CPUs give twice the wall time at most.

Configurations: ``sqlite/1`` (the default store in the project's folder), ``pg/1`` and
``pg/2`` (a fresh schema each time on ``--store-url``). Each is measured ``--repeat`` times,
alternating. The scratch projects go under ``--dir`` (default: a temporary folder; the
machine's /tmp may be slower to create files in than /work). Usage:

    .venv/bin/python bench/queued.py [--runs 1000] [--tasks 1] [--workers 2] [--repeat 3]
        [--only sqlite/1,pg/1,pg/2] [--dir DIR] [--profile DIR] [--json]

``--profile DIR`` runs each scheduler under cProfile and writes DIR/<config>-<n>-<i>.prof
(a profile slows the scheduler down: time without it); with ``LEGATO_BENCH_CPU=1`` in the
environment the profile counts the main thread's CPU time instead of wall time.

The module is not called ``queue.py``: run as a script its folder comes first on
``sys.path``, and it would shadow the standard library's ``queue``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import pg_schema
from bench.ha import CPU_SECONDS, drain, make_project, queue_runs, spans

CONFIGS = ("sqlite/1", "pg/1", "pg/2")

# Runs `legato scheduler` under cProfile; the CLI leaves with os._exit, so the profile is
# written just before that.
PROFILED = """
import cProfile, os, sys, time
out = sys.argv.pop(1)
# LEGATO_BENCH_CPU=1: CPU time of the scheduler's main thread, not wall time.
cpu = os.environ.get("LEGATO_BENCH_CPU") == "1"
prof = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
real_exit = os._exit
def _exit(code):
    prof.disable()
    prof.dump_stats(out)
    real_exit(code)
os._exit = _exit
from legato.cli.main import main
sys.argv[0] = "legato"
prof.enable()
try:
    main()
finally:
    _exit(0)
"""


def one(args: argparse.Namespace, config: str, i: int, tmp: Path) -> dict[str, float]:
    store, n = config.split("/")
    schedulers = int(n)
    where: AbstractContextManager[str | None] = (
        pg_schema(args.store_url, keep=False) if store == "pg" else nullcontext(None)
    )
    with where as url:
        project = make_project(
            tmp / f"{store}{n}-{time.monotonic_ns()}", args.tasks, args.workers, url
        )
        ids = queue_runs(project, args.runs)
        profile = None
        if args.profile is not None:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            profile = (PROFILED, str(Path(args.profile) / f"{store}-{n}-{i}"))
        began, got = drain(project, url, schedulers, ids, profile=profile)
    wall, span = spans(began, got)
    return {"wall_s": wall, "span_s": span, "runs_per_s": args.runs / span,
            "cpu_s": CPU_SECONDS[0], "busy_s": CPU_SECONDS[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONFIGS))
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--profile", default=None, help="write cProfile files of the schedulers")
    parser.add_argument("--store-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configs = [c for c in args.only.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c!r} (one of {', '.join(CONFIGS)})")
    results: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
    loads: list[float] = []
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="legato-bench-queued-", dir=args.dir) as tmp:
        for i in range(args.repeat):
            for c in configs:
                loads.append(os.getloadavg()[0])
                results[c].append(one(args, c, i, Path(tmp)))
                if not args.json:
                    r = results[c][-1]
                    print(
                        f"  {c}: wall {r['wall_s']:.2f} s, span {r['span_s']:.2f} s, "
                        f"{r['runs_per_s']:.0f} runs/s, CPU: schedulers {r['cpu_s']:.2f} s, "
                        f"machine {r['busy_s']:.2f} s (load {loads[-1]:.2f})",
                        flush=True,
                    )
    out: dict[str, Any] = {
        "machine": f"{platform.node()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load_1min": [min(loads), max(loads)],
        "scratch": args.dir or tempfile.gettempdir(),
        "runs": args.runs,
        "tasks_per_run": args.tasks,
        "workers_per_scheduler": args.workers,
        "results": {
            c: {
                "median_wall_s": statistics.median(r["wall_s"] for r in rs),
                "median_span_s": statistics.median(r["span_s"] for r in rs),
                "median_runs_per_s": statistics.median(r["runs_per_s"] for r in rs),
                "all_wall_s": [round(r["wall_s"], 2) for r in rs],
                "all_span_s": [round(r["span_s"], 2) for r in rs],
                "median_cpu_s": statistics.median(r["cpu_s"] for r in rs),
            }
            for c, rs in results.items()
        },
    }
    if "pg/1" in results and "pg/2" in results:
        res = out["results"]
        out["pg_two_over_one"] = res["pg/2"]["median_runs_per_s"] / res["pg/1"]["median_runs_per_s"]
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"\n{out['machine']}; {args.runs} runs x {args.tasks} task(s), {args.workers} workers "
        f"per scheduler; scratch in {out['scratch']}; load {min(loads):.2f}-{max(loads):.2f}"
    )
    print(f"{'config':>9} {'wall (median)':>14} {'span (median)':>14} {'runs/s':>7}  each wall")
    for c, r in out["results"].items():
        each = ", ".join(f"{x:.2f}" for x in r["all_wall_s"])
        print(
            f"{c:>9} {r['median_wall_s']:>13.2f}s {r['median_span_s']:>13.2f}s "
            f"{r['median_runs_per_s']:>7.0f}  {each}"
        )
    if "pg_two_over_one" in out:
        print(f"two schedulers over one on PostgreSQL (runs/s): {out['pg_two_over_one']:.2f}x")


if __name__ == "__main__":
    main()
