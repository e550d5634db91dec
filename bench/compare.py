"""Legato against Luigi, Prefect and Dagster: the same no-op workloads, interleaved.

Each peer runs in its own virtual environment, made here from the pinned versions below
(under --venvs, never inside the repository); Legato runs from this checkout's python.
Each workload is a child process running bench/compare_peers/TOOL_work.py; "run" is the
tool's own run time, measured inside the child and printed as JSON, "whole" the child
from start to exit, "peak memory" the largest summed PSS of the child's process tree
(sampled from /proc every 20 ms). Repeats go round-robin over the workloads and tools, so
a drift in the machine's load hits every tool alike. Usage:

    .venv/bin/python bench/compare.py [--repeat 3] [--only legato,luigi]
        [--workloads one,chain-1000,fan-1000,fan-10000] [--timeout 300] [--write]

--write puts the table into bench/RESULTS.md (replacing the section this script wrote
before) with the command, the date, the machine and the tools' versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PINS = {"luigi": "luigi==3.8.1", "prefect": "prefect==3.9.1", "dagster": "dagster==1.13.29"}
TOOLS = ["legato", "luigi", "prefect", "dagster"]
WORKLOADS = {"one": ("one", 1), "chain-1000": ("chain", 1000), "fan-1000": ("fan", 1000),
             "fan-10000": ("fan", 10000)}
HERE = Path(__file__).resolve().parent
PEERS = HERE / "compare_peers"
RESULTS = HERE / "RESULTS.md"
NOTES = """How each tool runs (each child a fresh process, `bench/compare_peers/TOOL_work.py`):
- Legato: a temporary project holding just the workload's pipeline, the default SQLite
  store in its `.legato/` and the local executor; "run" is `run_pipeline` with the workers
  already forked, and the process leaves as `legato run` does (no interpreter teardown).
- Luigi: `luigi.build(..., local_scheduler=True, workers=1)`; it keeps no state, so a task
  is complete once it has run in that process.
- Prefect: no API URL, so each process starts Prefect's temporary local server on a SQLite
  database under PREFECT_HOME (its startup timeout raised from 20 s to 180 s: under load
  the first start did not make 20 s); the chain calls each task in turn, the fan submits
  the leaves to the default thread-pool task runner. "run" includes the server's start.
- Dagster: `execute_in_process` on `DagsterInstance.get()` with DAGSTER_HOME a temporary
  folder (SQLite storage), ops in process, its default DEBUG event log.
Every tool does one untimed one-task run first, which creates its store. "whole" is the
child from spawn to exit; peak memory is the summed PSS of the child's process tree
(Prefect's server included), sampled every 20 ms. A "-" is a figure not taken."""
SECTION = "## Legato, Luigi, Prefect and Dagster side by side — `bench/compare.py`"


@dataclass
class Sample:
    """What one child gave: its run and whole times and its tree's peak RSS, or an error."""

    run: float | None = None
    whole: float | None = None
    peak_mb: float | None = None
    error: str | None = None
    version: str = ""


@dataclass
class Cell:
    """Every repeat of one tool on one workload."""

    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(s, attr) for s in self.samples if getattr(s, attr) is not None]
        return statistics.median(values) if values else None

    def error(self) -> str | None:
        errors = [s.error for s in self.samples if s.error]
        return errors[0] if errors and len(errors) == len(self.samples) else None


def venv_python(venvs: Path, tool: str) -> Path:
    """The peer's venv python, making the venv from its pin if it is not there yet."""
    name = PINS[tool].replace("==", "-")
    venv = venvs / name
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"making {venv} ({PINS[tool]})", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PINS[tool]], check=True)
        (venv / ".installed").write_text(PINS[tool] + "\n", encoding="utf-8")
    return python


def tree_memory(root: int, field: str = "Pss:") -> int:
    """Summed memory, in bytes, of a process and all its descendants.

    Each process counts its proportional set size (PSS: a page shared by k processes
    counts 1/k in each), so forked workers sharing their parent's pages are not counted
    twice, as a sum of RSS would (``field="Rss:"`` gives that sum).
    """
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1]) * 1024
                        break
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue  # the process ended while we looked
    return total


def run_child(cmd: list[str], env: dict[str, str], timeout: float) -> Sample:
    """Run one child in its own session, timing it and sampling its tree's memory."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_memory(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
        whole = time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole tree: Prefect's server is a child
        proc.communicate()
        return Sample(error=f"over the {timeout:.0f} s timeout")
    finally:
        done.set()
        sampler.join()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything the child left running
    text = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not text:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Sample(error=f"exit {proc.returncode}: {tail[0][:200]}")
    info = json.loads(text[-1])
    return Sample(run=info["run"], whole=whole, peak_mb=peak / 1e6,
                  version=info.get("version", ""))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.0f} MB" if unit == "MB" else f"{value:.2f} s"


def table(cells: dict[tuple[str, str], Cell], tools: list[str], workloads: list[str],
          versions: dict[str, str]) -> list[str]:
    """The Markdown table: a row per figure, a column per tool."""
    head = [f"{t.capitalize()} {versions.get(t, '')}".strip() for t in tools]
    lines = ["| workload | " + " | ".join(head) + " |", "|---" * (len(tools) + 1) + "|"]
    rows = [("one", "whole", "one-task pipeline, whole process"),
            ("chain-1000", "run", "chain of 1,000, run"),
            ("chain-1000", "whole", "chain of 1,000, whole"),
            ("fan-1000", "run", "fan of 1,000, run"),
            ("fan-1000", "whole", "fan of 1,000, whole"),
            ("fan-10000", "run", "fan of 10,000, run"),
            ("fan-10000", "whole", "fan of 10,000, whole"),
            ("fan-1000", "peak_mb", "peak memory of the process tree, fan of 1,000")]
    for workload, attr, label in rows:
        if workload not in workloads:
            continue
        out = []
        for tool in tools:
            cell = cells[(tool, workload)]
            err = cell.error()
            out.append(err if err else fmt(cell.median(attr), "MB" if attr == "peak_mb" else "s"))
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return lines


def write_section(body: list[str]) -> None:
    """Replace this script's section of RESULTS.md (or append it) with body."""
    text = RESULTS.read_text(encoding="utf-8")
    section = SECTION + "\n\n" + "\n".join(body).rstrip() + "\n"
    if SECTION in text:
        before, rest = text.split(SECTION, 1)
        nxt = rest.find("\n## ")
        after = rest[nxt + 1:] if nxt >= 0 else ""
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=",".join(TOOLS), help="tools, comma-separated")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per child")
    ap.add_argument("--venvs", type=Path,
                    default=Path.home() / ".cache" / "legato-bench" / "venvs")
    ap.add_argument("--write", action="store_true", help="put the table into RESULTS.md")
    args = ap.parse_args()
    only = [t for t in args.only.split(",") if t]
    tools = [t for t in TOOLS if t in only]
    workloads = [w for w in args.workloads.split(",") if w]
    for name in only + workloads:
        if name not in TOOLS and name not in WORKLOADS:
            raise SystemExit(f"unknown tool or workload: {name}")

    pythons = {t: (Path(sys.executable) if t == "legato" else venv_python(args.venvs, t))
               for t in tools}
    cells = {(t, w): Cell() for t in tools for w in workloads}
    versions: dict[str, str] = {}
    load_before = load()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="legato-compare-") as tmp:
        homes = {t: Path(tmp) / t for t in tools}
        for home in homes.values():
            home.mkdir()

        def child(tool: str, workload: str) -> Sample:
            kind, n = WORKLOADS[workload]
            cmd = [str(pythons[tool]), str(PEERS / f"{tool}_work.py"), kind, str(n)]
            if tool == "legato":
                cmd.append(str(homes[tool] / workload))
            env = dict(os.environ, PREFECT_HOME=str(homes[tool]),
                       DAGSTER_HOME=str(homes[tool]),
                       # Prefect gives its temporary server 20 s to start by default, too
                       # short on a loaded 2-core machine for the first run's migrations.
                       PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
            result = run_child(cmd, env, args.timeout)
            if result.version:
                versions[tool] = result.version
            return result

        # One untimed one-task run per tool first: each creates its store (Legato's and
        # Dagster's SQLite files, Prefect's database) as a user's first run would.
        for tool in tools:
            warm = child(tool, "one")
            print(f"warm-up {tool}: {warm}", file=sys.stderr, flush=True)
        for r in range(args.repeat):
            order = tools[r % len(tools):] + tools[:r % len(tools)]
            for workload in workloads:
                for tool in order:
                    if r and cells[(tool, workload)].error():
                        continue  # a peer over the timeout once is not given it again
                    sample = child(tool, workload)
                    cells[(tool, workload)].samples.append(sample)
                    print(f"repeat {r + 1} {workload} {tool}: {sample}", file=sys.stderr,
                          flush=True)
    load_after = load()
    lines = table(cells, tools, workloads, versions)
    command = "python bench/compare.py " + " ".join(sys.argv[1:])
    head = [f"Command: `{command.strip()}` ({started:%Y-%m-%d %H:%M} UTC, commit "
            f"{commit()}).", "",
            f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
            f"{platform.python_version()}; load average (1, 5, 15 min) {load_before} before, "
            f"{load_after} after. Medians of {args.repeat} repeat(s); peers pinned: "
            + ", ".join(PINS[t] for t in tools if t in PINS) + ".", ""]
    print("\n".join(head + lines))
    if args.write:
        write_section(head + lines + ["", NOTES])


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
