"""Function calls the driver's process makes for one run of a bench/core.py workload.

A count, not a time: on a shared virtual machine wall times move by 2x between neighbouring
runs, while the number of Python function calls for the same run moves by about a tenth
(with how often the driver wakes), so it shows whether a change adds work per task. Counts
the driver's side only (create the run, take the lease, write every step); the worker
processes are not profiled.

    .venv/bin/python bench/calls.py fan_1000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import core  # bench/core.py: the same projects and the same timed call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", help="a workload of bench/core.py, e.g. fan_1000")
    parser.add_argument("--top", type=int, default=0, help="also print the N busiest functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="legato-bench-calls-") as tmp:
        project = core.make_project(Path(tmp) / "p", 2)
        core.time_runs(project, [args.workload], 1)  # warm up: migrate, imports, workers
        profile = cProfile.Profile()
        profile.enable()
        core.time_runs(project, [args.workload], 1)
        profile.disable()
    stats = pstats.Stats(profile)
    print(f"{args.workload}: {stats.total_calls} function calls")  # type: ignore[attr-defined]
    if args.top:
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
