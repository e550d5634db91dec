"""chain-1000 quiet and with the machine's CPUs kept busy by other processes (issue 17).

Rounds alternate: one with no extra load, one with ``--busy`` processes that spin
(``while True: pass``), started before the round and killed after it by this script. Each
round times chain-1000 (bench/core.py's pipeline) twice:

* run: ``run_pipeline`` in this process with the worker pool already forked (as core.py);
* whole: a ``legato run chain_1000 -q`` process, start to exit, on a project holding just
  that pipeline.

Alternating the rounds spreads what the other users of a shared machine do over both
columns. Per round it also counts the context switches of the driver (this process) and of
the workers, voluntary (a process blocked) and involuntary (it was preempted), from
/proc/PID/status. Usage:

    .venv/bin/python bench/contention.py [--busy 2] [--rounds 5] [--workers 2]

Prints the load average, then one Markdown row per condition and measure: best and median
of the rounds, and busy / quiet (medians).
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import make_project  # the sibling script: one copy of the project code

CHAIN = '''
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@pipeline
def chain_1000():
    x = noop()
    for _ in range(999):
        x = noop(x)
'''


@contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` processes spinning on the CPUs until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.2)  # they are on the CPUs before the clock starts: a settling period
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def switches(pid: int | str) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the process so far, all its threads."""
    vol = invol = 0
    task_dir = Path(f"/proc/{pid}/task")
    for tid in task_dir.iterdir():
        for line in (tid / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol += int(line.split()[1])
    return vol, invol


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", type=int, default=2, help="spinning processes in a busy round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each kind")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    legato = str(Path(sys.executable).parent / "legato")
    figures: dict[str, dict[str, list[float]]] = {
        kind: {"run": [], "whole": [], "driver_invol": [], "worker_vol": [],
               "worker_invol": [], "driver_vol": []}
        for kind in ("quiet", "busy")
    }
    loads: list[str] = []
    with tempfile.TemporaryDirectory(prefix="legato-bench-") as tmp:
        project = make_project(Path(tmp) / "chain", args.workers, CHAIN)
        whole_cmd = [legato, "run", "chain_1000", "-q", "--project", str(project)]
        with Workspace(project) as ws:
            executor = ws.executor()
            _ = ws.store
            runs = ws.door(Actor.local_user()).runs
            runs.run_pipeline("chain_1000")  # untimed: warms the store and the workers
            subprocess.run(whole_cmd, check=True, capture_output=True)
            for _ in range(args.rounds):
                for kind in ("quiet", "busy"):
                    loads.append(load())
                    with busy(args.busy if kind == "busy" else 0):
                        fig = figures[kind]
                        pids = executor.worker_pids
                        d0, w0 = switches("self"), [switches(p) for p in pids]
                        t0 = time.perf_counter()
                        run = runs.run_pipeline("chain_1000")
                        fig["run"].append(time.perf_counter() - t0)
                        d1, w1 = switches("self"), [switches(p) for p in pids]
                        if run.state.value != "succeeded":
                            raise SystemExit(f"run {run.id} {run.state}")
                        fig["driver_vol"].append(d1[0] - d0[0])
                        fig["driver_invol"].append(d1[1] - d0[1])
                        pairs = list(zip(w0, w1, strict=True))
                        fig["worker_vol"].append(sum(b[0] - a[0] for a, b in pairs))
                        fig["worker_invol"].append(sum(b[1] - a[1] for a, b in pairs))
                        t0 = time.perf_counter()
                        subprocess.run(whole_cmd, check=True, capture_output=True)
                        fig["whole"].append(time.perf_counter() - t0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, workers={args.workers}, rounds={args.rounds}, "
          f"busy={args.busy}, LEGATO_SPIN={os.environ.get('LEGATO_SPIN', '(default)')}")
    print(f"load average (1 min) at the start of each round: {' '.join(loads)}")
    print("| chain-1000 | quiet best | quiet median | busy best | busy median | busy / quiet |")
    print("|---|---|---|---|---|---|")
    q, b = figures["quiet"], figures["busy"]
    for measure in ("run", "whole"):
        qm, bm = statistics.median(q[measure]), statistics.median(b[measure])
        print(f"| {measure} | {min(q[measure]):.3f} s | {qm:.3f} s | {min(b[measure]):.3f} s "
              f"| {bm:.3f} s | {bm / qm:.2f}x |")
    print("| context switches per run (medians) | quiet | busy |")
    print("|---|---|---|")
    for measure in ("driver_vol", "driver_invol", "worker_vol", "worker_invol"):
        print(f"| {measure.replace('_', ' ')} | {statistics.median(q[measure]):.0f} "
              f"| {statistics.median(b[measure]):.0f} |")


if __name__ == "__main__":
    main()
