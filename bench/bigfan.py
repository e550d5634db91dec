"""A 10,000-task fan as a user runs it: `legato run` from process start to exit, and when its
first task started.

The project holds just the fan (a root, ``--tasks`` leaves, a join), so the figures cover
importing Legato, loading the project (the pipeline body calls the task 10,002 times), hashing
and recording the graph, running every task and exiting. "First task started" is the
``started_at`` of the earliest task run, as the store recorded it, less the wall-clock time
just before the process was started. Usage:

    .venv/bin/python bench/bigfan.py [--tasks 10000] [--repeat 3] [--dir DIR] [--phases]

``--phases`` also times, in a fresh process each round, what comes before the first task:
importing the command's modules, opening the store, loading the project (running the
pipeline body) and recording the run with its task rows.

``--dir``: where the throwaway project goes (default: a temporary folder; creating files
costs differ between file systems, see "Lazy log files" in bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from core import make_project


def fan_code(n: int) -> str:
    return f'''
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@pipeline
def fan():
    root = noop()
    noop(*[noop(root) for _ in range({n})])
'''


def one_run(project: Path) -> tuple[float, float, float]:
    """(whole process, run as recorded, first task started after process start) in seconds."""
    from legato.services.workspace import Workspace

    legato = str(Path(sys.executable).parent / "legato")
    began = datetime.now(UTC)
    t0 = time.perf_counter()
    done = subprocess.run([legato, "run", "fan", "-q", "--project", str(project)],
                          capture_output=True, text=True)
    whole = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    with Workspace(project) as ws:
        run = ws.store.browse.list_runs(limit=1)[0]
        tasks = ws.store.runs.get_task_runs(run.id)
    first = min(t.started_at for t in tasks if t.started_at is not None)
    assert run.started_at is not None and run.finished_at is not None
    ran = (run.finished_at - run.started_at).total_seconds()
    return whole, ran, (first - began).total_seconds()


PHASES = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from legato.cli import main as _cli
from legato.services.run_creation import record_run
from legato.services.workspace import Workspace
import sqlalchemy.dialects.sqlite
t1 = time.perf_counter()
ws = Workspace(Path(sys.argv[1]))
ws.store
t2 = time.perf_counter()
ws.pipeline("fan")
t3 = time.perf_counter()
run, rows = record_run(ws, "fan")
t4 = time.perf_counter()
ws.close()
print(f"| {1000 * (t1 - t0):.0f} | {1000 * (t2 - t1):.0f} | {1000 * (t3 - t2):.0f} | "
      f"{1000 * (t4 - t3):.0f} ({len(rows)} rows) |")
"""


def phases(project: Path, repeat: int) -> None:
    """Print the time of each phase before a first task, one fresh process per round."""
    print("| imports, ms | open the store, ms | load the project, ms | record the run, ms |")
    print("|---|---|---|---|")
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", PHASES, str(project)],
                              capture_output=True, text=True)
        print(done.stdout.strip() or done.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", help="folder for the throwaway project (default: a temp folder)")
    ap.add_argument("--phases", action="store_true", help="also time the phases before it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="legato-bigfan-", dir=args.dir) as tmp:
        project = make_project(Path(tmp) / "fan", args.workers, fan_code(args.tasks))
        figures = [one_run(project) for _ in range(args.repeat)]
        if args.phases:
            phases(project, args.repeat)
    load = os.getloadavg()[0]
    print(f"fan of {args.tasks}, workers={args.workers}, repeat={args.repeat}, "
          f"load before the last run {load:.2f}")
    print("| figure | best | median |")
    print("|---|---|---|")
    for i, name in enumerate(("whole process", "run (recorded)", "first task started")):
        values = [f[i] for f in figures]
        print(f"| {name} | {min(values):.3f} s | {statistics.median(values):.3f} s |")


if __name__ == "__main__":
    main()
