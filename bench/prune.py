"""Pruning throughput, and what it does to a scheduler's tick meanwhile (issue 19: at least
10,000 task runs removed per second on SQLite and PostgreSQL, no tick over 100 ms meanwhile).

A throwaway project's store gets ``--runs`` finished runs of a 3-task pipeline, made 60 days
ago, each with its task runs, attempts and events (written in bulk through the store's own
tables), and a pipeline scheduled every second. Then `door.retention.prune` removes them
(``[retention] runs = "30d"``) while a thread calls the scheduler's ``tick(now)`` as
`legato scheduler` does, timing each. Printed: runs and task runs removed per second, and
the ticks' p50 / p99 / max during the prune and before it.

    .venv/bin/python bench/prune.py [--runs 20000] [--store-url postgresql+psycopg://...]
        [--no-analyze]

On PostgreSQL the tables are analyzed after the fill (as autovacuum would soon after);
``--no-analyze`` prunes with no statistics at all.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import pg_schema

FLOWS = """
from legato import pipeline, task
from legato.schedules import every


@task(in_process=True)
def step() -> int:
    return 1


@pipeline
def three():
    step.named("a")()
    step.named("b")()
    step.named("c")()


@pipeline(schedule=every("1s"))
def ticking():
    step()
"""


def fill(ws: object, runs: int, analyze: bool = True) -> None:
    """``runs`` finished runs of ``three`` made 60 days ago, with 3 task runs, 3 attempts
    and 7 events each, inserted in bulk."""
    from sqlalchemy import insert

    from legato.domain.ids import new_run_id
    from legato.domain.states import RunState
    from legato.store.schema import attempts, events, task_runs
    from legato.store.schema import runs as runs_table

    store = ws.store  # type: ignore[attr-defined]
    start = datetime.now(UTC) - timedelta(days=60)
    batch = 1000
    for first in range(0, runs, batch):
        run_rows, tr_rows, att_rows, ev_rows = [], [], [], []
        for i in range(first, min(runs, first + batch)):
            made = start + timedelta(milliseconds=i * 10)
            run_id = new_run_id(made)
            done = made + timedelta(seconds=1)
            run_rows.append(dict(
                id=run_id, pipeline="three", state=RunState.SUCCEEDED.value, params="{}",
                partition=None, code_version="v1", created_at=made, started_at=made,
                finished_at=done, priority=0, queue_position=0, cancel_requested=False,
            ))
            ev_rows.append(dict(run_id=run_id, task_key=None, kind="run_state",
                                old_state=None, new_state="succeeded", at=done, message=None))
            for key in ("a", "b", "c"):
                tr_rows.append(dict(
                    run_id=run_id, task_key=key, node=key, map_index=None, state="succeeded",
                    attempt=1, started_at=made, finished_at=done,
                ))
                att_rows.append(dict(run_id=run_id, task_key=key, number=1,
                                     outcome="succeeded", started_at=made, finished_at=done))
                ev_rows.append(dict(run_id=run_id, task_key=key, kind="task_state",
                                    old_state="running", new_state="succeeded", at=done,
                                    message=None))
                ev_rows.append(dict(run_id=run_id, task_key=key, kind="task_state",
                                    old_state=None, new_state="pending", at=made, message=None))
        with store._db.write.begin() as conn:  # a bench fills in bulk
            conn.execute(insert(runs_table), run_rows)
            conn.execute(insert(task_runs), tr_rows)
            conn.execute(insert(attempts), att_rows)
            conn.execute(insert(events), ev_rows)
    if analyze and store._engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of a bulk load: without statistics PostgreSQL
        # takes the freshly filled tables for nearly empty and plans every batch as a scan of
        # all of them.
        with store._engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--store-url")
    ap.add_argument("--no-analyze", action="store_true",
                    help="PostgreSQL: prune right after the bulk load, before any statistics")
    args = ap.parse_args()
    from legato.scheduler.tick import Scheduler
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    schema: AbstractContextManager[str | None] = (
        pg_schema(args.store_url, keep=False) if args.store_url else nullcontext()
    )
    with tempfile.TemporaryDirectory(prefix="legato-bench-prune-") as tmp, schema as url:
        root = Path(tmp)
        store = "" if url is None else f'[store]\nurl = "{url}"\n\n'
        (root / "legato.toml").write_text(
            f'[project]\nname = "bench_prune"\nmodules = ["flows"]\n\n{store}'
            '[retention]\nruns = "30d"\n', encoding="utf-8",
        )
        (root / "flows.py").write_text(FLOWS, encoding="utf-8")
        ws = Workspace(root)
        try:
            door = ws.door(Actor.local_user())
            t0 = time.perf_counter()
            fill(ws, args.runs, analyze=not args.no_analyze)
            print(f"filled {args.runs} runs in {time.perf_counter() - t0:.1f} s")
            scheduler = Scheduler(ws.door(Actor.scheduler("bench")).automation)
            ticks: list[tuple[float, float]] = []  # (when, seconds)
            stop = threading.Event()

            def ticking() -> None:
                while not stop.is_set():
                    began = time.perf_counter()
                    scheduler.tick(datetime.now(UTC))
                    ticks.append((began, time.perf_counter() - began))
                    stop.wait(0.05)

            thread = threading.Thread(target=ticking, daemon=True)
            thread.start()
            time.sleep(2)  # ticks before the prune: the normal p99
            began = time.perf_counter()
            report = door.retention.prune()
            took = time.perf_counter() - began
            stop.set()
            thread.join(10)
        finally:
            ws.close()
    before = [s for at, s in ticks if at < began]
    during = [s for at, s in ticks if began <= at <= began + took]
    gone = report.removed
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"store {'PostgreSQL' if args.store_url else 'SQLite'}")
    print(f"pruned {gone.runs} runs, {gone.task_runs} task runs, {gone.attempts} attempts, "
          f"{gone.events} events in {took:.2f} s: {gone.runs / took:.0f} runs/s, "
          f"{gone.task_runs / took:.0f} task runs/s")
    for name, xs in (("before", before), ("during", during)):
        if xs:
            print(f"ticks {name}: {len(xs)}, p50 {statistics.median(xs) * 1000:.1f} ms, "
                  f"p99 {percentile(xs, 0.99) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
