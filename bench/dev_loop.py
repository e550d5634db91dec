"""The dev loop: from saving an edited task to its run starting under `legato dev --run`.

A small project (three tasks in a chain, each in the worker processes, as a user's tasks
run by default; or a copy of ``--project DIR``) is copied under a temporary folder and served
by a real `legato dev --project COPY --port 0 --run PIPELINE` subprocess. Once its first run
(launched at start) has finished, the task module is saved ``--edits`` times, each save
changing a constant the first task returns (so each is a new code version), and after each
save the script waits for the run the dev loop launches on that code to finish before the
next save. For each save it records, from the moment just before the file is written
(wall clock; the server runs on the same machine):

- ``reload``: the server's line ``code changed: reloaded ...`` read from its output;
- ``queued``: the new run's ``created_at`` (the server's store);
- ``started``: the new run's ``started_at``: the figure the target is about;
- ``task``: its first task's ``started_at`` (a worker of the new code runs it);
- ``finished``: the run's ``finished_at`` (succeeded: the user sees the new result).

Usage:

    .venv/bin/python bench/dev_loop.py [--edits 20] [--out results.json]
        [--project DIR --module flows.py --pipeline NAME]  # a copy of another project;
                                                           # each save appends a line
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

TARGET_P50 = 1.0  # seconds from save to the run started

CODE = """
from legato import pipeline, task

EDIT = {edit}


@task
def extract() -> list[int]:
    return [EDIT, 1, 2, 3]


@task
def transform(rows: list[int]) -> list[int]:
    return [r * 2 for r in rows]


@task
def load(rows: list[int]) -> int:
    return sum(rows)


@pipeline
def dev_loop():
    load(transform(extract()))
"""
PHASES = ("reload", "queued", "started", "task", "finished")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


class Server:
    """`legato dev` as a subprocess; each line of its output with when it arrived."""

    def __init__(self, project: Path, pipeline: str) -> None:
        legato = str(Path(sys.executable).parent / "legato")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
        self.proc = subprocess.Popen(
            [legato, "dev", "--project", str(project), "--port", "0", "--run", pipeline],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.time(), line.rstrip("\n")))

    def wait_line(self, pattern: str, after: int = 0, timeout: float = 60) -> re.Match[str]:
        """The first line from index ``after`` on that matches ``pattern``; its arrival time
        is ``self.seen[index][0]``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = after
        while True:
            while i < len(self.seen):
                found = rx.search(self.seen[i][1])
                if found:
                    self.last_index = i
                    return found
                i += 1
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                text = "\n".join(line for _, line in self.seen)
                raise SystemExit(f"no line matching {pattern!r}:\n{text}")
            with contextlib.suppress(queue.Empty):
                self.seen.append(self.lines.get(timeout=min(left, 1.0)))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def token(project: Path) -> str:
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    with Workspace(project) as ws:
        made = ws.door(Actor.local_user()).accounts.create_token("bench-dev-loop", "viewer")
        return made.token


def seconds(stamp: str | None) -> float:
    assert stamp is not None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def finished_run(http: Any, run_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail: dict[str, Any] = http.get(f"/api/v1/runs/{run_id}").json()
        if detail["run"]["state"] in ("succeeded", "failed", "canceled"):
            if detail["run"]["state"] != "succeeded":
                raise SystemExit(f"run {run_id} {detail['run']['state']}: {detail['run']}")
            return detail
        time.sleep(0.02)
    raise SystemExit(f"run {run_id} did not finish in {timeout:g}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=20, help="saves measured")
    ap.add_argument("--project", type=Path, help="copy this project instead of the built-in")
    ap.add_argument("--module", default="flows.py", help="the file saved (in --project)")
    ap.add_argument("--pipeline", default="dev_loop", help="the pipeline --run launches")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = ap.parse_args()

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="legato-dev-loop-"))
    project = tmp / "project"
    module = project / args.module
    if args.project is not None:
        shutil.copytree(args.project, project, ignore=shutil.ignore_patterns(".legato", ".venv"))
        original = module.read_text()

        def text(i: int) -> str:
            return f"{original.rstrip()}\n\nBENCH_EDIT = {i}\n"
    else:
        project.mkdir()
        (project / "legato.toml").write_text(
            '[project]\nname = "dev-loop"\nmodules = ["flows"]\n\n[executor]\nworkers = 2\n'
        )

        def text(i: int) -> str:
            return CODE.format(edit=i)

    module.write_text(text(0))
    server = Server(project, args.pipeline)
    per: dict[str, list[float]] = {p: [] for p in PHASES}
    try:
        url = server.wait_line(r"web UI at (http://\S+?)/?\s").group(1)
        first = server.wait_line(rf"queued run (\S+) of {re.escape(args.pipeline)}").group(1)
        http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token(project)}"}, timeout=30
        )
        finished_run(http, first)
        for i in range(1, args.edits + 1):
            after = len(server.seen)
            saved = time.time()
            module.write_text(text(i))
            server.wait_line(r"code changed: reloaded", after)
            reload_at = server.seen[server.last_index][0]
            run_id = server.wait_line(
                rf"queued run (\S+) of {re.escape(args.pipeline)}", after
            ).group(1)
            detail = finished_run(http, run_id)
            run = detail["run"]
            task = min(seconds(t["started_at"]) for t in detail["tasks"] if t["started_at"])
            for phase, at in (
                ("reload", reload_at),
                ("queued", seconds(run["created_at"])),
                ("started", seconds(run["started_at"])),
                ("task", task),
                ("finished", seconds(run["finished_at"])),
            ):
                per[phase].append(at - saved)
            print(
                f"save {i:3d}: "
                + "  ".join(f"{p} {per[p][-1] * 1000:7.1f} ms" for p in PHASES),
                flush=True,
            )
        http.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    figures = {
        p: {
            "p50_ms": round(pct(v, 50) * 1000, 1),
            "p95_ms": round(pct(v, 95) * 1000, 1),
            "max_ms": round(max(v) * 1000, 1),
            "mean_ms": round(statistics.fmean(v) * 1000, 1),
        }
        for p, v in per.items()
    }
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "platform": platform.platform(),
    }
    print(f"\n{args.edits} saves, save -> ...   (p50 / p95 / max ms)")
    for p in PHASES:
        f = figures[p]
        print(f"  {p:9s} {f['p50_ms']:8.1f} {f['p95_ms']:8.1f} {f['max_ms']:8.1f}")
    ok = figures["started"]["p50_ms"] < TARGET_P50 * 1000
    print(f"target: save -> run started p50 < {TARGET_P50:g} s: {'met' if ok else 'NOT met'}")
    if args.out is not None:
        args.out.write_text(json.dumps({"figures": figures, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
