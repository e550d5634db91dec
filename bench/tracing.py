"""What tracing costs a run: bench/core.py's chain-1000 with tracing off and on, alternating.

"off" is the default (no OTEL variables); "on" points the exporter at a receiver in this
process that answers every OTLP/HTTP export with 200 and counts the spans' bytes, so the
figure is the cost of making and exporting the spans, not of a slow collector. Each round
runs `bench/core.py --only chain_1000` in a fresh process for each side. Then, as wall
times move by 2x on a shared machine, a count that does not: the function calls the
driver's thread makes in Legato's tracing code and OpenTelemetry for one chain-1000 run
(after a warm-up run), off and on. Usage:

    .venv/bin/python bench/tracing.py [--rounds 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CORE = Path(__file__).parent / "core.py"


class Sink:
    """Accepts OTLP/HTTP exports on 127.0.0.1 and counts them."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.exports += 1
                outer.bytes += len(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"


def chain(repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Best and median seconds of chain-1000 in a fresh process with ``env``."""
    done = subprocess.run(
        [sys.executable, str(CORE), "--only", "chain_1000", "--repeat", str(repeat)],
        capture_output=True, text=True, check=True, env=env,
    )
    found = re.search(r"\| chain_1000 \| ([\d.]+) s \| ([\d.]+) s", done.stdout)
    if found is None:
        raise SystemExit(f"no figure in: {done.stdout}{done.stderr}")
    return float(found[1]), float(found[2])


def count_calls() -> None:
    """Print the calls into tracing code for one chain-1000 run in this process."""
    sys.path.insert(0, str(CORE.parent))
    import core

    with tempfile.TemporaryDirectory(prefix="legato-bench-tracing-") as tmp:
        project = core.make_project(Path(tmp) / "p", 2)
        core.time_runs(project, ["chain_1000"], 1)  # warm up: migrate, imports, workers
        profile = cProfile.Profile()
        profile.enable()
        core.time_runs(project, ["chain_1000"], 1)
        profile.disable()
    stats: Any = pstats.Stats(profile)
    traced = sum(
        calls for (path, _, _), (_, calls, *_) in stats.stats.items()
        if "legato/observability" in path or "opentelemetry" in path
    )
    print(f"{traced} {stats.total_calls}")


def calls(env: dict[str, str]) -> tuple[int, int]:
    """Calls into tracing code and all calls, for one chain-1000 run with ``env``."""
    done = subprocess.run(
        [sys.executable, __file__, "--count-calls"],
        capture_output=True, text=True, check=True, env=env,
    )
    traced, total = done.stdout.split()
    return int(traced), int(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--count-calls", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count_calls:
        count_calls()
        return
    sink = Sink()
    off = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    on = {**off, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
    print(f"chain-1000, best / median of {args.repeat} runs per process")
    print("| round | tracing off | tracing on |")
    print("|---|---|---|")
    for n in range(1, args.rounds + 1):
        a = chain(args.repeat, off)
        b = chain(args.repeat, on)
        print(f"| {n} | {a[0]:.3f} / {a[1]:.3f} s | {b[0]:.3f} / {b[1]:.3f} s |", flush=True)
    print(f"exports received while on: {sink.exports} ({sink.bytes / 1e6:.1f} MB)")
    print()
    print("| chain-1000, driver's thread | calls in tracing code | all calls |")
    print("|---|---|---|")
    for label, env in (("tracing off", off), ("tracing on", on)):
        traced, total = calls(env)
        print(f"| {label} | {traced:,} | {total:,} |")


if __name__ == "__main__":
    main()
