"""Event-to-first-task latency of `legato up`: a webhook POST and a Redis Streams message.

A throwaway project (embedded SQLite store, local process executor) holds one pipeline
whose only task appends ``time.time()`` to a file as its very first statement; the
pipeline is triggered by ``webhook("hook")`` and by ``redis_stream(<unique stream>)``. The
real daemon runs as a subprocess (``legato up --port N``); this process fires the events
one at a time, alternating the two kinds, each after the previous one's task has started
plus a random 50-100 ms pause, so no run queues behind another. Latency is the task's
``time.time()`` minus ``time.time()`` taken just before the POST / XADD (one machine, one
clock). Usage:

    .venv/bin/python bench/latency.py [--events 200] [--warmup 5] [--json]

Needs Redis (``--redis-url``, default redis://127.0.0.1:6379/0); ``--kinds webhook`` skips it.
``--history 1000000`` first writes that many finished task runs (see bench/tick.py) into
the store and adds a pipeline with an upstream-success trigger, whose check the daemon's
scheduler tick makes on every wake-up; ``--sql STATEMENT`` runs on the store before `up`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

FLOWS = '''
import os
import time

from legato import pipeline, task
from legato.triggers import redis_stream, webhook

STAMPS = {stamps!r}


@task
def stamp(tag: str) -> None:
    t = time.time()  # first thing: this is what the benchmark measures
    fd = os.open(STAMPS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{{tag}} {{t!r}}\\n".encode())
    finally:
        os.close(fd)


@pipeline(triggers=[webhook("hook"), redis_stream({stream!r}, url={url!r}, start="latest")])
def latency(tag: str = "none"):
    stamp(tag)
'''

# With --history: another pipeline fired by an upstream success, as a real project has,
# so the scheduler's tick (run on every wake-up of the daemon) does its upstream check.
UPSTREAM_FLOWS = '''

from legato.triggers import on_success


@task
def noop() -> None:
    return None


@pipeline
def frequent():
    noop()


@pipeline(triggers=[on_success("frequent")])
def after_frequent():
    noop()
'''
MORE_UPSTREAM = '''

@pipeline(triggers=[on_success("frequent")])
def after_frequent_{n}():
    noop()
'''

PIPELINE = "latency"
TARGETS = {"p50": 50.0, "p99": 250.0}  # ms


def make_project(
    root: Path, stream: str, redis_url: str, workers: int, upstream: int = 0
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text(
        f'[project]\nname = "latency"\nmodules = ["flows"]\n\n[executor]\nworkers = {workers}\n',
        encoding="utf-8",
    )
    code = FLOWS.format(stamps=str(root / "stamps.txt"), stream=stream, url=redis_url)
    if upstream:
        code += UPSTREAM_FLOWS
        code += "".join(MORE_UPSTREAM.format(n=n) for n in range(2, upstream + 1))
    (root / "flows.py").write_text(code, encoding="utf-8")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stamps:
    """Reads the lines the task appends: ``<tag> <time.time()>``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.seen: dict[str, float] = {}

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            tag, t = line.decode().split()
            self.seen.setdefault(tag, float(t))

    def wait(self, tag: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if tag in self.seen:
                return self.seen[tag]
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)


def prepare_store(project: Path, task_runs: int, sql: list[str]) -> dict[str, object]:
    """Fill the store with history (see bench/tick.py) and run ``sql`` on it, before `up`."""
    from tick import fill_history

    from legato.services.workspace import Workspace

    with Workspace(project) as ws:
        info = fill_history(ws.store, task_runs, with_events=True, days=365.0)
        with ws.store._engine.begin() as conn:
            for stmt in sql:
                conn.exec_driver_sql(stmt)
        with ws.store._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return info


def tokens(project: Path) -> tuple[dict[str, str], str]:
    """An API token's header (a viewer: the benchmarks read) and a token of the webhook
    ``hook`` of PIPELINE, made as an admin makes them."""
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    with Workspace(project) as ws:
        local = ws.door(Actor.local_user())
        api = local.accounts.create_token(f"bench-{uuid.uuid4().hex[:6]}", "viewer").token
        pipe = ws.project.pipelines.get(PIPELINE)
        webhook = pipe is not None and any(t.name == "hook" for t in pipe.automation.triggers)
        hook = local.automation.webhook_token(PIPELINE, "hook") if webhook else ""
    return {"Authorization": f"Bearer {api}"}, hook


def wait_health(
    port: int,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/v1/health", headers=headers or {})
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"no answer on port {port} in {timeout:g}s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Stop a daemon as Ctrl-C would (SIGTERM), killing it if it takes over ``timeout`` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_group(client: object, stream: str, group: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            groups = client.xinfo_groups(stream)  # type: ignore[attr-defined]
        except Exception:
            groups = []
        names = {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups}
        if group in names:
            return
        time.sleep(0.05)
    raise SystemExit(f"the daemon's Redis listener did not create group {group!r} on {stream!r}")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(lat: list[float]) -> dict[str, float]:
    return {
        "p50": pct(lat, 50),
        "p90": pct(lat, 90),
        "p99": pct(lat, 99),
        "max": max(lat),
        "mean": statistics.fmean(lat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200, help="events fired per kind")
    ap.add_argument("--warmup", type=int, default=5, help="first events per kind not counted")
    ap.add_argument("--kinds", nargs="+", default=["webhook", "redis"],
                    choices=["webhook", "redis"])
    ap.add_argument("--gap", type=float, nargs=2, default=[0.05, 0.10], metavar=("MIN", "MAX"),
                    help="seconds to pause after a task started before the next event")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a task")
    ap.add_argument("--history", type=int, metavar="TASK_RUNS",
                    help="add an upstream-triggered pipeline and this many historical task "
                    "runs (with their runs and events) to the store before the daemon starts")
    ap.add_argument("--upstream-triggers", type=int, default=1, metavar="K",
                    help="with --history: K pipelines triggered by the same upstream success")
    ap.add_argument("--sql", action="append", default=[],
                    help="a statement to run on the store before the daemon starts (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the project folder (printed)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    if args.events <= args.warmup:
        raise SystemExit("--events must be larger than --warmup")

    legato = str(Path(sys.executable).parent / "legato")
    stream = f"legato-bench-latency-{uuid.uuid4().hex[:12]}"
    tmp = Path(tempfile.mkdtemp(prefix="legato-latency-"))
    project = make_project(
        tmp / "proj", stream, args.redis_url, args.workers,
        upstream=args.upstream_triggers if args.history is not None else 0,
    )
    history = None
    if args.history is not None or args.sql:
        history = prepare_store(project, args.history or 0, args.sql)
    port = free_port()
    log = tmp / "daemon.log"
    load_before = os.getloadavg()
    rclient = None
    if "redis" in args.kinds:
        import redis

        rclient = redis.Redis.from_url(args.redis_url)
    api_auth, hook_token = tokens(project)
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            [legato, "up", "--project", str(project), "--port", str(port)],
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    t_launch = time.monotonic()
    results: dict[str, dict[str, object]] = {}
    try:
        wait_health(port, proc, log, 60, api_auth)
        if rclient is not None:
            wait_group(rclient, stream, f"legato-{PIPELINE}", 30)
        startup = time.monotonic() - t_launch

        from legato.config import load_config
        from legato.store.store import Store

        store = Store.open(load_config(project).database_url, migrate=False)
        http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=args.timeout)
        headers = {"X-Legato-Token": hook_token, "Content-Type": "application/json"}
        path = f"/api/v1/hooks/{PIPELINE}/hook"
        stamps = Stamps(project / "stamps.txt")
        fired: dict[str, list[tuple[str, float, float | None]]] = {k: [] for k in args.kinds}
        post_ms: list[float] = []
        bad_http: list[str] = []
        rng = random.Random(1)
        for i in range(args.events):
            for kind in args.kinds:
                tag = f"{kind[0]}{i}"
                body = json.dumps({"tag": tag})
                if kind == "webhook":
                    t0 = time.time()
                    http_conn.request("POST", path, body=body, headers=headers)
                    resp = http_conn.getresponse()
                    resp.read()
                    t_resp = time.time()
                    if resp.status != 201:
                        bad_http.append(f"{tag}: HTTP {resp.status}")
                    if i >= args.warmup:
                        post_ms.append((t_resp - t0) * 1000)
                else:
                    assert rclient is not None
                    t0 = time.time()
                    rclient.xadd(stream, {"payload": body})
                started = stamps.wait(tag, args.timeout)
                fired[kind].append((tag, t0, started))
                time.sleep(rng.uniform(*args.gap))
        http_conn.close()

        # Every run should finish; then count the runs each kind made.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = store.browse.list_runs(pipeline=PIPELINE, limit=None)
            if all(r.state.finished for r in runs):
                break
            time.sleep(0.1)
        by_tag = {r.params.get("tag"): r for r in runs}
        for kind, events in fired.items():
            origin = "trigger:hook" if kind == "webhook" else f"trigger:redis-{stream}"
            made = [r for r in runs if r.origin == origin]
            counted = events[args.warmup:]
            lat = [(s - t0) * 1000 for _, t0, s in counted if s is not None]
            # Where the time goes: event -> run recorded (the daemon's clock) -> task start.
            rec = [
                ((by_tag[tag].created_at.timestamp() - t0) * 1000, (s - t0) * 1000)
                for tag, t0, s in counted
                if s is not None and tag in by_tag
            ]
            results[kind] = {
                "fired": len(events),
                "runs_made": len(made),
                "runs_succeeded": sum(1 for r in made if r.state.value == "succeeded"),
                "started": sum(1 for _, _, s in events if s is not None),
                "counted": len(lat),
                "latency_ms": summary(lat) if lat else None,
                "to_run_recorded_ms": summary([a for a, _ in rec]) if rec else None,
                "recorded_to_start_ms": summary([b - a for a, b in rec]) if rec else None,
            }
        if post_ms:
            results["webhook"]["http_response_ms"] = summary(post_ms)
            results["webhook"]["http_errors"] = bad_http
        store.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the daemon's own process group only
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if rclient is not None:
            rclient.delete(stream)
            rclient.close()
        if args.keep:
            print(f"project kept in {tmp}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    load_after = os.getloadavg()
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "events": args.events,
        "warmup": args.warmup,
        "workers": args.workers,
        "gap_s": args.gap,
        "daemon_ready_s": round(startup, 3),
        "history": history,
        "upstream_triggers": args.upstream_triggers if args.history is not None else 0,
        "sql": args.sql,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    print(f"machine: {meta['machine']}, workers={args.workers}, events={args.events} per kind "
          f"(first {args.warmup} dropped), load {meta['loadavg_before'][0]:.2f} -> "
          f"{meta['loadavg_after'][0]:.2f}, daemon ready in {startup:.2f} s")
    if history is not None:
        print(f"store: {history['task_runs']:,} historical task runs ({history['runs']:,} runs, "
              f"{history['events']:,} events), {args.upstream_triggers} upstream-success "
              "trigger(s)"
              + "".join(f"; {q}" for q in args.sql))
    print("| event → first task start | p50 | p90 | p99 | max | runs made / events |")
    print("|---|---|---|---|---|---|")
    for kind, res in results.items():
        lat = res["latency_ms"]
        made = f"{res['runs_made']} / {res['fired']}"
        if lat is None:
            print(f"| {kind} | - | - | - | - | {made} |")
            continue
        assert isinstance(lat, dict)
        print(f"| {kind} | {lat['p50']:.1f} ms | {lat['p90']:.1f} ms | {lat['p99']:.1f} ms | "
              f"{lat['max']:.1f} ms | {made} |")
    print()
    print("Breakdown (p50 / p99 ms): event → run recorded in the store; recorded → task start"
          "; webhook HTTP response")
    for kind, res in results.items():
        parts = []
        for key in ("to_run_recorded_ms", "recorded_to_start_ms", "http_response_ms"):
            s = res.get(key)
            if isinstance(s, dict):
                parts.append(f"{key.removesuffix('_ms')} {s['p50']:.1f} / {s['p99']:.1f}")
        print(f"  {kind}: " + "; ".join(parts))
    missed = [k for k, r in results.items() if r["runs_made"] != r["fired"]
              or r["started"] != r["fired"]]
    if missed:
        print(f"MISSING RUNS: {', '.join(missed)}")
    for kind, res in results.items():
        lat = res["latency_ms"]
        if isinstance(lat, dict):
            verdict = ", ".join(
                f"{k} {'met' if lat[k] < v else 'MISSED'} (< {v:g} ms)" for k, v in TARGETS.items()
            )
            print(f"  {kind}: {verdict}")


if __name__ == "__main__":
    main()
