"""From a run failing to its webhook alert arriving, under `legato up`.

A throwaway project (embedded SQLite store, local process executor) holds one pipeline
partitioned by static keys whose only task raises an error carrying ``time.time()`` as it
fails; legato.toml has a webhook channel pointing at an HTTP receiver in this process
(signed with HMAC-SHA256) and a ``run_failed`` rule. The real daemon runs as a subprocess
(``legato up --port N``); this process submits one run at a time over the API (each for its
own partition, so each is its own alert), and waits for its alert before the next. Latency
is the receiver's ``time.time()`` at arrival minus the time in the task's error (one
machine, one clock): the task failing, the driver recording the run failed (with the fact in
the outbox, same transaction), the alert thread evaluating and sending. Usage:

    .venv/bin/python bench/alerts.py [--failures 50] [--warmup 3] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from latency import free_port, pct, stop, tokens, wait_health  # the sibling script: one of each

TARGET_P99_S = 2.0

FLOWS = '''
import time
from legato import pipeline, task
from legato.partitions import static

@task
def load() -> None:
    raise RuntimeError(f"failed at {time.time():.6f}")

@pipeline(partitions=static([f"k{n}" for n in range(KEYS)]))
def PIPELINE():
    load()
'''
PIPELINE = "bench"


def receiver() -> tuple[ThreadingHTTPServer, queue.Queue[tuple[float, dict[str, Any]]]]:
    got: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put((time.time(), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--failures", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    total = args.failures + args.warmup
    server, got = receiver()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    tmp = Path(tempfile.mkdtemp(prefix="legato-bench-alerts-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        project = tmp / "p"
        project.mkdir()
        (project / "flows.py").write_text(
            FLOWS.replace("KEYS", str(total)).replace("PIPELINE", PIPELINE)
        )
        (project / "legato.toml").write_text(
            '[project]\nname = "bench"\nmodules = ["flows"]\n'
            "[executor]\nworkers = 2\n"
            f'[channels.ops]\nkind = "webhook"\nurl = "{hook}"\nsecret = {{ env = "HOOK_KEY" }}\n'
            '[alerts.failed]\ncondition = "run_failed"\nchannels = ["ops"]\n'
            'group_interval = "1ms"\n'
        )
        headers, _ = tokens(project)
        from legato.services.actor import Actor
        from legato.services.workspace import Workspace

        with Workspace(project) as ws:  # an operator's token, to start runs
            token = ws.door(Actor.local_user()).accounts.create_token("bench-op", "operator")
        headers = {"Authorization": f"Bearer {token.token}", "Content-Type": "application/json"}
        port = free_port()
        log = tmp / "up.log"
        env = {**os.environ, "HOOK_KEY": "bench-key"}
        legato = str(Path(sys.executable).parent / "legato")
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [legato, "up", "--project", str(project), "--port", str(port)],
                stdout=fh, stderr=subprocess.STDOUT, env=env,
            )
        wait_health(port, proc, log, 60, headers)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies: list[float] = []
        for n in range(total):
            body = json.dumps({"partition": f"k{n}"})
            conn.request("POST", f"/api/v1/pipelines/{PIPELINE}/runs", body, headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status >= 300:
                raise SystemExit(f"submit: HTTP {answer.status}")
            arrived, alert = got.get(timeout=60)
            failed_at = float(re.findall(r"failed at (\d+\.\d+)", alert["error"] or "")[0])
            if n >= args.warmup:
                latencies.append(arrived - failed_at)
        result = {
            "failures": len(latencies),
            "p50_s": round(pct(latencies, 50), 4),
            "p90_s": round(pct(latencies, 90), 4),
            "p99_s": round(pct(latencies, 99), 4),
            "max_s": round(max(latencies), 4),
            "target_p99_s": TARGET_P99_S,
            "met": pct(latencies, 99) < TARGET_P99_S,
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}",
        }
        if args.json:
            print(json.dumps(result))
        else:
            for key, value in result.items():
                print(f"{key}: {value}")
    finally:
        stop(proc, 15)
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
