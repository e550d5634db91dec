"""Core engine benchmarks: chain-1000, fan-1000, fan-10000 and a one-task `legato run`.

Every workload runs on the default durable store (SQLite in WAL mode, in the project's
.legato folder) with the local process pool. Usage:

    .venv/bin/python bench/core.py [--repeat 3] [--workers 2]

Prints one line per workload (best and median wall time of the repeats) in Markdown.
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

PIPELINES = '''
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@pipeline
def one():
    noop()


@pipeline
def chain_1000():
    x = noop()
    for _ in range(999):
        x = noop(x)


def _fan(n: int):
    def body():
        root = noop()
        noop(*[noop(root) for _ in range(n)])

    body.__name__ = f"fan_{n}"
    return pipeline(body)


fan_1000 = _fan(1000)
fan_10000 = _fan(10000)


@pipeline
def fan_10000_mapped():
    noop(noop.map(numbers(10000)))
'''


ONE_TASK = '''
from legato import pipeline, task


@task
def noop() -> None:
    return None


@pipeline
def one():
    noop()
'''


def make_project(root: Path, workers: int, code: str = PIPELINES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text(
        f'[project]\nmodules = ["flows"]\n\n[executor]\nworkers = {workers}\n', encoding="utf-8"
    )
    (root / "flows.py").write_text(code, encoding="utf-8")
    return root


def time_runs(project: Path, names: list[str], repeat: int) -> dict[str, list[float]]:
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    out: dict[str, list[float]] = {}
    with Workspace(project) as ws:
        ws.executor()  # workers are forked once, as `legato run` does before its run starts
        _ = ws.store  # open (and migrate) before timing
        runs = ws.door(Actor.local_user()).runs
        for name in names:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                run = runs.run_pipeline(name)
                times.append(time.perf_counter() - t0)
                if run.state.value != "succeeded":
                    raise SystemExit(f"{name}: run {run.id} {run.state}")
            out[name] = times
    return out


def time_cli(project: Path, repeat: int) -> list[float]:
    legato = str(Path(sys.executable).parent / "legato")
    subprocess.run([legato, "run", "one", "-q", "--project", str(project)], check=True,
                   capture_output=True)  # warm the file cache and the store
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([legato, "run", "one", "-q", "--project", str(project)], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="workloads to run (default: all)")
    args = ap.parse_args()
    names = ["chain_1000", "fan_1000", "fan_10000", "fan_10000_mapped"]
    if args.only:
        names = [n for n in names if n in args.only]
    with tempfile.TemporaryDirectory(prefix="legato-bench-") as tmp:
        project = make_project(Path(tmp) / "bench", args.workers)
        results = time_runs(project, names, args.repeat)
        # The whole-process figure uses a project holding just the one-task pipeline: a
        # `legato run` imports the whole project, and 10,000-node graphs take time to build.
        single = make_project(Path(tmp) / "single", args.workers, ONE_TASK)
        cli = time_cli(single, max(args.repeat, 5)) if not args.only or "cli" in args.only else []
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, workers={args.workers}, repeat={args.repeat}")
    print("| workload | best | median | per task (best) |")
    print("|---|---|---|---|")
    tasks = {"chain_1000": 1000, "fan_1000": 1002, "fan_10000": 10002, "fan_10000_mapped": 10002}
    for name, times in results.items():
        best = min(times)
        print(f"| {name} | {best:.3f} s | {statistics.median(times):.3f} s | "
              f"{best / tasks[name] * 1000:.2f} ms |")
    if cli:
        print(f"| `legato run one` (whole process) | {min(cli):.3f} s | "
              f"{statistics.median(cli):.3f} s | |")


if __name__ == "__main__":
    main()
