"""Tasks per second through one and through two `legato scheduler` processes on PostgreSQL.

A throwaway project on a fresh PostgreSQL schema holds one pipeline of ``--tasks`` trivial
independent tasks (each returns a small int, so every task writes a result). ``--runs`` runs
are queued first; then 1 or 2 schedulers start (each with ``--workers`` local worker
processes, as each would on its own machine) and drain the queue. Throughput is task runs
finished divided by the span from the first run's start to the last run's end, as the store
records them (scheduler start-up is not counted). Each configuration is measured
``--repeat`` times, alternating, each on a new schema. Usage:

    .venv/bin/python bench/ha.py [--runs 300] [--tasks 5] [--workers 2] [--repeat 3] [--json]

``--store-url`` names the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import pg_schema

LEGATO = str(Path(sys.executable).parent / "legato")

FLOWS = """
from legato import pipeline, task


@task
def work(i: int) -> int:
    return i


@pipeline
def wide():
    for i in range({tasks}):
        work.named(f"t{{i}}")(i)
"""


def make_project(root: Path, tasks: int, workers: int, store_url: str | None) -> Path:
    """A project of one pipeline ``wide`` of ``tasks`` independent tasks; ``store_url`` None:
    the default store (SQLite in the project's folder)."""
    root.mkdir(parents=True, exist_ok=True)
    store = "" if store_url is None else f'[store]\nurl = "{store_url}"\n\n'
    (root / "legato.toml").write_text(
        f'[project]\nname = "bench_ha"\nmodules = ["flows"]\n\n{store}'
        f"[executor]\nworkers = {workers}\n",
        encoding="utf-8",
    )
    (root / "flows.py").write_text(FLOWS.format(tasks=tasks), encoding="utf-8")
    return root


def queue_runs(project: Path, runs: int, pipeline: str = "wide") -> list[str]:
    """Queue ``runs`` runs of ``pipeline`` as `legato submit` does; their ids."""
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    ws = Workspace(project)
    try:
        door = ws.door(Actor.local_user()).runs
        return [door.create_run(pipeline).id for _ in range(runs)]
    finally:
        ws.close()


#: [CPU seconds of the last drain's schedulers, their workers included (those they waited for);
#: CPU seconds the whole machine was busy meanwhile]
CPU_SECONDS = [0.0, 0.0]


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all CPUs, every process: /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def drain(
    project: Path,
    store_url: str | None,
    schedulers: int,
    ids: list[str],
    *,
    profile: tuple[str, str] | None = None,
) -> tuple[float, list[Any]]:
    """Start ``schedulers`` `legato scheduler` processes on ``project`` and wait until no run
    is queued or running; (the wall time just before the first was started, the runs
    ``ids`` as the store has them then). ``profile`` (code, file prefix): run each scheduler
    as ``python -c code FILE-i.prof scheduler ...`` instead (bench/queued.py's cProfile).
    ``CPU_SECONDS`` is set to the CPU time the schedulers and their workers used."""
    from legato.domain.states import RunState
    from legato.services.workspace import Workspace

    env = dict(os.environ)
    if store_url is not None:
        env["LEGATO_DATABASE_URL"] = store_url

    def command(i: int) -> list[str]:
        if profile is None:
            return [LEGATO]
        return [sys.executable, "-c", profile[0], f"{profile[1]}-{i}.prof"]

    cpu_before, busy_before = _children_cpu(), machine_busy()
    began = time.time()
    procs = [
        subprocess.Popen(
            [*command(i), "scheduler", "--project", str(project)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for i in range(schedulers)
    ]
    ws = Workspace(project)
    try:
        deadline = time.monotonic() + 600
        while True:
            runs = ws.store.runs
            left = runs.runs_in_state(RunState.QUEUED, limit=1) or runs.runs_in_state(
                RunState.RUNNING, limit=1
            )
            if not left:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the runs did not finish within 10 minutes")
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a scheduler stopped before the runs finished")
            time.sleep(0.2)
        got = [ws.store.runs.get_run(i) for i in ids]
    finally:
        ws.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    CPU_SECONDS[0] = _children_cpu() - cpu_before
    CPU_SECONDS[1] = machine_busy() - busy_before
    bad = [r.id for r in got if r.state != RunState.SUCCEEDED]
    if bad:
        raise SystemExit(f"{len(bad)} runs did not succeed, e.g. {bad[0]}")
    return began, got


def spans(began: float, got: list[Any]) -> tuple[float, float]:
    """(seconds from the schedulers' start to the last run's end, seconds from the first
    run's start to the last run's end), both ends as the store records them."""
    start = min(r.started_at for r in got if r.started_at is not None)
    end = max(r.finished_at for r in got if r.finished_at is not None)
    return end.timestamp() - began, (end - start).total_seconds()


def one(args: argparse.Namespace, schedulers: int, tmp: Path) -> dict[str, float]:
    with pg_schema(args.store_url, keep=False) as url:
        project = make_project(
            tmp / f"p{schedulers}-{time.monotonic_ns()}", args.tasks, args.workers, url
        )
        ids = queue_runs(project, args.runs)
        began, got = drain(project, url, schedulers, ids)
    _, span = spans(began, got)
    tasks = args.runs * args.tasks
    return {"seconds": span, "tasks_per_s": tasks / span, "runs_per_s": args.runs / span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="legato-bench-ha-") as tmp:
        for _ in range(args.repeat):
            for n in (1, 2):
                results[n].append(one(args, n, Path(tmp)))
                if not args.json:
                    r = results[n][-1]
                    print(
                        f"  {n} scheduler(s): {r['seconds']:.2f} s, {r['tasks_per_s']:.0f} tasks/s"
                    )
    out = {
        "machine": f"{platform.node()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load": os.getloadavg(),
        "runs": args.runs,
        "tasks_per_run": args.tasks,
        "workers_per_scheduler": args.workers,
        "results": {
            n: {
                "median_tasks_per_s": statistics.median(r["tasks_per_s"] for r in rs),
                "all_tasks_per_s": [round(r["tasks_per_s"], 1) for r in rs],
            }
            for n, rs in results.items()
        },
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"\n{out['machine']}; {args.runs} runs x {args.tasks} tasks, "
        f"{args.workers} workers per scheduler"
    )
    print(f"{'schedulers':>10} {'median tasks/s':>15}  each")
    for n, r in out["results"].items():
        each = ", ".join(f"{x:.0f}" for x in r["all_tasks_per_s"])
        print(f"{n:>10} {r['median_tasks_per_s']:>15.0f}  {each}")


if __name__ == "__main__":
    main()
