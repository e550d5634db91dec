"""Backfill throughput: one-task partition runs per second through one `legato scheduler`
(issue 18, item 5: at least 100 runs/s on SQLite; 10,000 partitions in under 100 s).

A throwaway project holds one pipeline ``hours`` partitioned by hour with a single trivial
task. `legato backfill hours --from A --to B --max-concurrent M` records the backfill (as a
user would), then one `legato scheduler` starts and the script waits until the backfill is
completed. Figures:

- *wall*: from just before the scheduler process was started to the backfill's last run's
  end (start-up included: what a user waits);
- *span*: from the first run's start to the last run's end (the draining alone);
- *CPU*: the scheduler's and its workers' CPU seconds, and the machine's busy CPU seconds.

    .venv/bin/python bench/backfill.py [--partitions 1000] [--max-concurrent 4,32]
        [--workers 2] [--repeat 1] [--store-url URL] [--dir DIR] [--profile DIR]

``--store-url`` (a PostgreSQL URL): a fresh schema per measurement instead of the default
SQLite store. ``--profile DIR`` runs the scheduler under cProfile (bench/queued.py's).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import pg_schema
from bench.ha import LEGATO, _children_cpu, machine_busy
from bench.queued import PROFILED

FLOWS = """
from legato import pipeline, task
from legato.partitions import hourly


@task
def load(ctx) -> str:
    return ctx.partition


@pipeline(partitions=hourly(start="2020-01-01", tz="UTC"))
def hours():
    load()
"""

START = datetime(2020, 1, 1, tzinfo=UTC)


def make_project(root: Path, workers: int, store_url: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    store = "" if store_url is None else f'[store]\nurl = "{store_url}"\n\n'
    (root / "legato.toml").write_text(
        f'[project]\nname = "bench_backfill"\nmodules = ["flows"]\n\n{store}'
        f"[executor]\nworkers = {workers}\n",
        encoding="utf-8",
    )
    (root / "flows.py").write_text(FLOWS, encoding="utf-8")
    return root


def create_backfill(project: Path, partitions: int, max_concurrent: int) -> None:
    last = START + timedelta(hours=partitions - 1)
    key = "%Y-%m-%dT%H:%M"
    subprocess.run(
        [LEGATO, "backfill", "hours", "--from", START.strftime(key), "--to", last.strftime(key),
         "--max-concurrent", str(max_concurrent), "--project", str(project)],
        check=True, capture_output=True,
    )


def drain(project: Path, env: dict[str, str], profile: str | None) -> dict[str, float]:
    """Run one scheduler until the project's only backfill is completed."""
    from legato.domain.states import BackfillState, RunState
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    cmd = [LEGATO] if profile is None else [sys.executable, "-c", PROFILED, profile]
    cpu0, busy0 = _children_cpu(), machine_busy()
    began = time.time()
    proc = subprocess.Popen(
        [*cmd, "scheduler", "--project", str(project)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    ws = Workspace(project)
    try:
        auto = ws.door(Actor.local_user()).automation
        (view,) = auto.backfills()
        deadline = time.monotonic() + 1800
        while view.record.state != BackfillState.COMPLETED:
            if proc.poll() is not None:
                raise SystemExit("the scheduler stopped before the backfill was completed")
            if time.monotonic() > deadline:
                raise SystemExit(f"not completed in 30 minutes: {view.runs}")
            time.sleep(0.2)
            view = auto.backfill(view.record.id)
        runs = ws.store.browse.list_runs(pipeline="hours", limit=None)
    finally:
        ws.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    if any(r.state != RunState.SUCCEEDED for r in runs):
        raise SystemExit("a backfill run did not succeed")
    start = min(r.started_at for r in runs if r.started_at is not None)
    end = max(r.finished_at for r in runs if r.finished_at is not None)
    return {
        "runs": len(runs),
        "wall": end.timestamp() - began,
        "span": (end - start).total_seconds(),
        "cpu": _children_cpu() - cpu0,
        "busy": machine_busy() - busy0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--max-concurrent", default="4,32")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--store-url")
    ap.add_argument("--dir")
    ap.add_argument("--profile")
    args = ap.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"{args.partitions} partitions, {args.workers} workers, "
          f"store {'PostgreSQL' if args.store_url else 'SQLite'}")
    print("| max-concurrent | runs | wall | span | runs/s (span) | CPU s (scheduler / machine) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="legato-bench-backfill-", dir=args.dir) as tmp:
        for i in range(args.repeat):
            for mc in (int(x) for x in args.max_concurrent.split(",")):
                schema: AbstractContextManager[str | None] = (
                    pg_schema(args.store_url, keep=False) if args.store_url else nullcontext()
                )
                with schema as url:
                    env = dict(os.environ)
                    if url is not None:
                        env["LEGATO_DATABASE_URL"] = url
                    project = make_project(Path(tmp) / f"p{mc}-{i}", args.workers, url)
                    create_backfill(project, args.partitions, mc)
                    prof = None
                    if args.profile:
                        Path(args.profile).mkdir(parents=True, exist_ok=True)
                        prof = str(Path(args.profile) / f"backfill-{mc}-{i}.prof")
                    got = drain(project, env, prof)
                print(f"| {mc} | {got['runs']:.0f} | {got['wall']:.2f} s | {got['span']:.2f} s "
                      f"| {got['runs'] / got['span']:.0f} | {got['cpu']:.1f} / {got['busy']:.1f} |")


if __name__ == "__main__":
    main()
