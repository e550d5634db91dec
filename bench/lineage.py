"""What ``[lineage]`` costs a run, and how fast the outbox empties to an HTTP server.

A throwaway project (embedded SQLite store) holds one pipeline of ``--tasks`` in-process
tasks, each consuming one asset and producing another. Each is run ``--runs`` times in this
process (``door.runs.execute``: the driver, the store, the events built with the OpenLineage
client's classes and written in each step's transaction) three ways: without ``[lineage]``,
with ``[lineage]`` whose HTTP server refuses for now (the events are built and stored, one
send tried at the end), and with the file transport (every event built, stored and sent as
the run ends). Then the outbox left by the refused runs is sent to a local HTTP server by
``door.lineage.deliver`` in batches of 100 (events per second). Usage:

    .venv/bin/python bench/lineage.py [--tasks 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from legato.services.actor import Actor
from legato.services.workspace import Workspace


def flows(tasks: int) -> str:
    lines = ["from legato import pipeline, task", ""]
    for n in range(tasks):
        lines += [
            f'@task(in_process=True, consumes="raw.t{n}", produces="clean.t{n}")',
            f"def t{n}() -> int:",
            f"    return {n}",
            "",
        ]
    lines += ["@pipeline", "def wide():"] + [f"    t{n}()" for n in range(tasks)]
    return "\n".join(lines) + "\n"


def project(root: Path, tasks: int, lineage: str) -> Path:
    root.mkdir(parents=True)
    (root / "legato.toml").write_text(
        f'[project]\nname = "bench"\nmodules = ["flows"]\n\n[executor]\nworkers = 1\n\n{lineage}'
    )
    (root / "flows.py").write_text(flows(tasks))
    return root


class Server:
    def __init__(self) -> None:
        self.status = 503
        self.got = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.got += outer.status == 200
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def timed_runs(root: Path, runs: int) -> tuple[list[float], Workspace]:
    ws = Workspace(root)
    door = ws.door(Actor.local_user())
    door.runs.execute(door.runs.create_run("wide", {}).id)  # warm: code loaded, store made
    took = []
    for _ in range(runs):
        made = door.runs.create_run("wide", {})
        began = time.perf_counter()
        door.runs.execute(made.id)
        took.append(time.perf_counter() - began)
    return took, ws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    server = Server()
    base = Path(tempfile.mkdtemp(prefix="legato-bench-lineage-"))
    setups = {
        "no [lineage]": "",
        "[lineage] http, server refusing (built + stored)": (
            f'[lineage]\ntransport = "http"\nurl = "{server.url}"\n'
        ),
        "[lineage] file (built + stored + sent)": (
            '[lineage]\ntransport = "file"\npath = "lineage.jsonl"\n'
        ),
    }
    print(f"{args.tasks} tasks per run, {args.runs} runs each; {platform.processor() or ''} "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    kept: Workspace | None = None
    for n, (name, table) in enumerate(setups.items()):
        took, ws = timed_runs(project(base / f"p{n}", args.tasks, table), args.runs)
        print(f"  {name}: median {statistics.median(took) * 1000:.0f} ms per run, "
              f"best {min(took) * 1000:.0f} ms")
        if "refusing" in name:
            kept = ws
        else:
            ws.close()
    assert kept is not None
    server.status = 200
    door = kept.door(Actor.scheduler("bench"))
    now = kept.clock() + timedelta(hours=1)  # every retry due
    began = time.perf_counter()
    sent = 0
    while batch := door.lineage.deliver(now, "bench", limit=100):
        sent += sum(d.error is None for d in batch)
    took_s = time.perf_counter() - began
    kept.close()
    print(f"  outbox to HTTP: {sent} events in {took_s:.2f} s = {sent / took_s:.0f} events/s "
          f"(server counted {server.got})")


if __name__ == "__main__":
    main()
