"""Soak: `legato up` for an hour (or ``--minutes``) with retention on, sampled every 10 s.

A throwaway project (embedded SQLite store, local process executor) holds:

- ``chain``: three tasks, scheduled ``every("2s")``;
- ``hooked``: one task, fired by its webhook every 0.5 s from this process;
- ``flaky``: a task that fails after two retries, scheduled every 10 s;
- ``parts``: a daily-partitioned pipeline, backfilled over a year of days at the start.

``[retention]`` keeps runs 2 minutes, failed runs 4 minutes, the logs and results of the
others 1 minute and the audit trail (a row per webhook call) 2 minutes, so pruning applies
during the run (a pass a minute). Every ``--every``
seconds it samples, from /proc, the daemon's RSS and PSS, open files and threads and its
workers' (every process under it) summed; from the daemon's ``/metrics``, the p99 of the
scheduler ticks since the last sample (the upper bound of the histogram bucket it falls in);
the sizes of the store (with its WAL), the logs folder and the results folder (disk usage,
as ``du`` counts it) and how many run folders each holds. The series goes to
``bench/soak.json`` and ``bench/soak.csv`` and, with matplotlib (``pip install -e
".[bench]"``), a chart to ``bench/soak.png``; the summary compares the samples after
``--warmup`` minutes. Usage:

    .venv/bin/python bench/soak.py [--minutes 60] [--warmup 10] [--every 10] [--out bench]
    .venv/bin/python bench/soak.py --summarise bench/soak.json [--out bench]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from latency import free_port, wait_health
from latency import stop as stop_daemon  # the sibling script: one of each

FLOWS = """
import time

from legato import pipeline, task
from legato.partitions import daily
from legato.schedules import every
from legato.triggers import webhook


@task
def extract() -> list[int]:
    print("extracting 100 rows")
    return list(range(100))


@task
def transform(rows: list[int]) -> list[int]:
    return sorted(rows, reverse=True)


@task
def load(rows: list[int]) -> int:
    return max(rows)


@pipeline(schedule=every("2s"))
def chain():
    load(transform(extract()))


@task
def note(label: str) -> str:
    print(f"webhook {label}")
    return label.upper()


@pipeline(triggers=[webhook("hook")])
def hooked(label: str = "none"):
    note(label)


@task(retries=2, retry_delay=0.2)
def breaks() -> None:
    print("about to fail")
    raise RuntimeError("this task always fails")


@pipeline(schedule=every("10s"))
def flaky():
    breaks()


@task
def day() -> float:
    return time.time()


@pipeline(partitions=daily(start="2020-01-01", tz="UTC"))
def parts():
    day()
"""

TOML = """[project]
name = "soak"
modules = ["flows"]

[executor]
workers = 2

[retention]
runs = "2m"
failed_runs = "4m"
logs = "1m"
results = "1m"
audit = "2m"
"""

FIELDS = [
    "t_s",
    "daemon_rss_mb",
    "daemon_pss_mb",
    "daemon_uss_mb",
    "workers",
    "workers_rss_mb",
    "workers_pss_mb",
    "open_files",
    "threads",
    "tick_p99_ms",
    "ticks",
    "store_mb",
    "logs_mb",
    "results_mb",
    "log_entries",
    "result_entries",
    "runs",
    "trigger_events",
    "audit_rows",
    "webhooks",
]


def children(pid: int) -> list[int]:
    """Every process under ``pid`` (its workers, their helpers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def memory_mb(pid: int) -> tuple[float, float, float]:
    """RSS, PSS and USS (private pages: what the process alone holds, whatever its workers
    share with it) of a process, in MB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0, 0.0, 0.0
    pattern = r"^(Rss|Pss|Private_Clean|Private_Dirty):\s+(\d+) kB"
    kb = {m[0]: int(m[1]) for m in re.findall(pattern, text, re.M)}
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return kb.get("Rss", 0) / 1024, kb.get("Pss", 0) / 1024, uss / 1024


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def threads(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(re.findall(r"^Threads:\s+(\d+)", status, re.M)[0])


def tree_mb(path: Path) -> float:
    """The disk space a folder takes, as ``du`` counts it (blocks of files and folders):
    a small run's log takes a block whatever its length."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [*files, *dirs]:
            with contextlib.suppress(OSError):  # pruned meanwhile
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total / 1e6


def run_folders(path: Path) -> int:
    """Run folders under logs or results (laid out YYYY/MM/DD/RUN)."""
    if not path.is_dir():
        return 0
    return sum(1 for p in path.glob("[0-9]*/[0-9]*/[0-9]*/*") if p.is_dir())


def tick_buckets(port: int, headers: dict[str, str]) -> dict[float, float]:
    """The scheduler tick histogram's cumulative buckets: upper bound -> count."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers=headers)
    body = conn.getresponse().read().decode()
    conn.close()
    pattern = r'^legato_scheduler_tick_duration_seconds_bucket\{le="([^"]+)"[^}]*\} (\S+)'
    return {float(le): float(n) for le, n in re.findall(pattern, body, re.M)}


def p99_between(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The p99 of the ticks between two scrapes (a bucket's upper bound) and their count."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return math.nan, 0
    for bound, n in zip(bounds, counts, strict=True):
        if n >= 0.99 * total:
            return bound, int(total)
    return math.inf, int(total)


def count_rows(store: Path, tables: tuple[str, ...]) -> list[int]:
    """How many rows each of ``tables`` holds now."""
    import sqlite3

    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
        return [int(conn.execute(f"select count(*) from {t}").fetchone()[0]) for t in tables]


def fire_webhooks(
    port: int, token: str, stop: threading.Event, fired: list[int], every: float
) -> None:
    """POST the webhook every ``every`` seconds until ``stop``."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = 0
    next_at = time.monotonic()
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        next_at += every
        try:
            conn.request(
                "POST", "/api/v1/hooks/hooked/hook", json.dumps({"label": f"n{n}"}), headers
            )
            answer = conn.getresponse()
            answer.read()
            if answer.status < 300:
                fired[0] += 1
        except OSError:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n += 1


def chart(series: list[dict[str, float]], path: Path, warmup_s: float) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 'chart skipped: matplotlib is not installed (pip install -e ".[bench]")'
    minutes = [s["t_s"] / 60 for s in series]
    panels = [
        ("memory (MB)", ["daemon_rss_mb", "daemon_pss_mb", "daemon_uss_mb", "workers_pss_mb"]),
        ("open files, threads", ["open_files", "threads"]),
        ("tick p99 (ms)", ["tick_p99_ms"]),
        ("size (MB)", ["store_mb", "logs_mb", "results_mb"]),
        ("rows, folders", ["runs", "log_entries", "result_entries"]),
        ("rows of other tables", ["trigger_events", "audit_rows"]),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 15), sharex=True)
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(minutes, [s[key] for s in series], label=key)
        ax.axvline(warmup_s / 60, color="grey", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"chart: {path}"


def summarise(series: list[dict[str, float]], warmup_s: float) -> dict[str, Any]:
    """First and last sample after the warm-up, the range between, and the means of the
    first and the last ``ENDS_S`` of it (memory moves by a few MB as workers are forked and
    replaced: the means say whether it grows), of each measure."""
    after = [s for s in series if s["t_s"] >= warmup_s] or series
    out: dict[str, Any] = {"samples_after_warmup": len(after)}
    start, end = after[0]["t_s"], after[-1]["t_s"]
    for key in FIELDS[1:]:
        values = [s[key] for s in after if key in s and not math.isnan(s[key])]
        if values:
            head = [s[key] for s in after if key in s and s["t_s"] < start + ENDS_S]
            tail = [s[key] for s in after if key in s and s["t_s"] > end - ENDS_S]
            out[key] = {
                "first": round(values[0], 2),
                "last": round(values[-1], 2),
                "min": round(min(values), 2),
                "max": round(max(values), 2),
                "mean_first_5min": round(sum(head) / len(head), 2),
                "mean_last_5min": round(sum(tail) / len(tail), 2),
            }
    return out


#: The span at each end of the series whose means the summary compares.
ENDS_S = 300.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0, help="minutes before comparing")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    ap.add_argument("--summarise", type=Path, metavar="SOAK_JSON",
                    help="only summarise (and chart) a series written before, into --out")
    args = ap.parse_args()
    if args.summarise is not None:
        saved = json.loads(args.summarise.read_text())
        warmup_s = saved["warmup_minutes"] * 60
        saved["summary"] = summarise(saved["series"], warmup_s)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(json.dumps(saved, indent=1))
        print(chart(saved["series"], args.out / "soak.png", warmup_s))
        print(json.dumps(saved["summary"], indent=1))
        return
    tmp = Path(tempfile.mkdtemp(prefix="legato-soak-"))
    proc: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        project = tmp / "p"
        project.mkdir()
        (project / "flows.py").write_text(FLOWS)
        (project / "legato.toml").write_text(TOML)
        from legato.services.actor import Actor
        from legato.services.workspace import Workspace

        with Workspace(project) as ws:
            local = ws.door(Actor.local_user())
            viewer = local.accounts.create_token("soak-viewer", "viewer").token
            hook = local.automation.webhook_token("hooked", "hook")
        headers = {"Authorization": f"Bearer {viewer}"}
        legato = str(Path(sys.executable).parent / "legato")
        port = free_port()
        log = tmp / "up.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [legato, "up", "--project", str(project), "--port", str(port)],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        wait_health(port, proc, log, 120, headers)
        subprocess.run(
            [
                legato,
                "backfill",
                "parts",
                "--project",
                str(project),
                "--from",
                "2023-01-01",
                "--to",
                "2023-12-31",
                "--max-concurrent",
                "1",
            ],
            check=True,
            capture_output=True,
        )
        fired = [0]
        shooter = threading.Thread(
            target=fire_webhooks, args=(port, hook, stop, fired, 0.5), daemon=True
        )
        shooter.start()
        dot = project / ".legato"
        series: list[dict[str, float]] = []
        start = time.monotonic()
        last = tick_buckets(port, headers)
        end = start + args.minutes * 60
        while time.monotonic() < end:
            if stop.wait(args.every):
                break
            if proc.poll() is not None:
                raise SystemExit(f"the daemon exited ({proc.returncode}):\n{log.read_text()}")
            workers = children(proc.pid)
            mem = [memory_mb(p) for p in workers]
            now_buckets = tick_buckets(port, headers)
            p99, ticks = p99_between(last, now_buckets)
            last = now_buckets
            rss, pss, uss = memory_mb(proc.pid)
            store_bytes = sum(f.stat().st_size for f in dot.glob("legato.db*") if f.is_file())
            n_runs, n_events, n_audit = count_rows(
                dot / "legato.db", ("runs", "trigger_events", "audit_log")
            )
            series.append(
                {
                    "t_s": round(time.monotonic() - start, 1),
                    "daemon_rss_mb": round(rss, 2),
                    "daemon_pss_mb": round(pss, 2),
                    "daemon_uss_mb": round(uss, 2),
                    "workers": len(workers),
                    "workers_rss_mb": round(sum(m[0] for m in mem), 2),
                    "workers_pss_mb": round(sum(m[1] for m in mem), 2),
                    "open_files": open_files(proc.pid),
                    "threads": threads(proc.pid),
                    "tick_p99_ms": p99 * 1000,
                    "ticks": ticks,
                    "store_mb": round(store_bytes / 1e6, 3),
                    "logs_mb": round(tree_mb(dot / "logs"), 3),
                    "results_mb": round(tree_mb(dot / "results"), 3),
                    "log_entries": run_folders(dot / "logs"),
                    "result_entries": run_folders(dot / "results"),
                    "runs": n_runs,
                    "trigger_events": n_events,
                    "audit_rows": n_audit,
                    "webhooks": fired[0],
                }
            )
            s = series[-1]
            print(
                f"{s['t_s'] / 60:5.1f} min  daemon {s['daemon_pss_mb']:.1f} MB PSS "
                f"{s['daemon_uss_mb']:.1f} MB USS  "
                f"fds {s['open_files']}  threads {s['threads']}  tick p99 "
                f"{s['tick_p99_ms']:.0f} ms  store {s['store_mb']:.1f} MB  logs "
                f"{s['logs_mb']:.1f} MB  results {s['results_mb']:.1f} MB  runs {s['runs']}",
                flush=True,
            )
        stop.set()
        args.out.mkdir(parents=True, exist_ok=True)
        warmup_s = args.warmup * 60
        pruned = re.findall(r"pruned (\d+) runs", log.read_text())
        result = {
            "minutes": args.minutes,
            "warmup_minutes": args.warmup,
            "webhooks_fired": fired[0],
            "runs_pruned": sum(int(n) for n in pruned),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, load "
            f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}",
            "summary": summarise(series, warmup_s),
            "series": series,
        }
        (args.out / "soak.json").write_text(json.dumps(result, indent=1))
        with open(args.out / "soak.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(series)
        print(chart(series, args.out / "soak.png", warmup_s))
        print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=1))
    finally:
        stop.set()
        stop_daemon(proc, 30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
