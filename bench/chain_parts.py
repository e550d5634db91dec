"""Where a chained task's time goes: chain-N split into the store's steps, the wait for the
worker, and the driver's own work, beside the floor of a worker round trip.

Runs chain-N in-process (as bench/core.py does) with ``RunStore.apply`` (one driver step: one
transaction), ``LocalExecutor.submit`` (the hand-over to a worker) and ``LocalExecutor.wait``
(until the worker's outcome is back) timed around each call; the rest of the run's wall time
is the driver's own bookkeeping. Then ``--trips`` no-op attempts go to one worker and back
with no store at all: the round trip a chained task cannot do without on the local pool.
Usage:

    .venv/bin/python bench/chain_parts.py [--tasks 1000] [--repeat 3] [--dir DIR] \
        [--store-url URL]

``--store-url``: a PostgreSQL URL to run the chain on instead of the project's SQLite file.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from core import make_project
from roundtrips import chain_code, with_schema

Totals = dict[str, list[float]]


def _timed(owner: type, name: str, totals: dict[str, float]) -> None:
    fn: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - t0

    setattr(owner, name, wrapper)


def chain_parts(project: Path, repeat: int, n: int) -> Totals:
    from legato.executors.local import LocalExecutor
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace
    from legato.store.run_store import RunStore

    totals: dict[str, float] = {}
    _timed(RunStore, "apply", totals)
    _timed(LocalExecutor, "submit", totals)
    _timed(LocalExecutor, "wait", totals)
    out: Totals = {"run": [], "apply": [], "submit": [], "wait": [], "driver": []}
    with Workspace(project) as ws:
        ws.executor()
        runs = ws.door(Actor.local_user()).runs
        runs.run_pipeline("chain")  # warm: imports, caches, the first snapshot
        for _ in range(repeat):
            totals.clear()
            t0 = time.perf_counter()
            run = runs.run_pipeline("chain")
            wall = time.perf_counter() - t0
            if run.state.value != "succeeded":
                raise SystemExit(f"run {run.id} {run.state}")
            parts = {k: totals.get(k, 0.0) for k in ("apply", "submit", "wait")}
            out["run"].append(wall / n)
            for k, v in parts.items():
                out[k].append(v / n)
            out["driver"].append((wall - sum(parts.values())) / n)
    return out


def round_trip(root: Path, trips: int) -> float:
    """Seconds per no-op attempt sent to one worker and back (no store, no log output)."""
    from legato import pipeline, task
    from legato.executors.interface import AttemptSpec
    from legato.executors.local import LocalExecutor
    from legato.results import ResultStore

    @task
    def noop() -> None:
        return None

    @pipeline
    def p() -> None:
        noop()

    ex = LocalExecutor(workers=1, results=ResultStore(root / "results"))
    ex.start({"p": p})
    try:
        def one(i: int) -> None:
            ex.submit(AttemptSpec(
                run_id="r", pipeline="p", node="noop", task_key=f"noop_{i}", map_index=None,
                attempt=1, args=(), kwargs=(), params={}, partition=None,
                result_key=f"r/noop_{i}", log_path=str(root / "logs" / "r" / f"{i}.1.log"),
                timeout=None,
            ))
            while not ex.wait(None):
                pass

        for i in range(50):
            one(i)  # warm
        t0 = time.perf_counter()
        for i in range(trips):
            one(50 + i)
        return (time.perf_counter() - t0) / trips
    finally:
        ex.shutdown()


@contextmanager
def _store(project: Path, url: str | None) -> Iterator[None]:
    """The project on PostgreSQL at ``url``, in a schema of its own dropped afterwards."""
    if url is None:
        yield
        return
    import sqlalchemy as sa

    schema = f"bench_parts_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        with open(project / "legato.toml", "a", encoding="utf-8") as f:
            f.write(f'\n[store]\nurl = "{with_schema(url, schema)}"\n')
        yield
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--trips", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", help="folder for the throwaway project (default: a temp folder)")
    ap.add_argument("--store-url", help="a PostgreSQL URL (default: the project's SQLite)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="legato-parts-", dir=args.dir) as tmp:
        project = make_project(Path(tmp) / "chain", args.workers, chain_code(args.tasks))
        with _store(project, args.store_url):
            parts = chain_parts(project, args.repeat, args.tasks)
        trip = round_trip(Path(tmp) / "trip", args.trips)
    print(f"chain of {args.tasks}, {args.repeat} runs, workers={args.workers}, "
          f"store={'PostgreSQL' if args.store_url else 'SQLite'}, "
          f"load {os.getloadavg()[0]:.2f}; medians per chained task:")
    print("| part | ms per task |")
    print("|---|---|")
    names = {
        "run": "the whole run",
        "apply": "store steps (`RunStore.apply`)",
        "wait": "waiting for the worker (`LocalExecutor.wait`)",
        "submit": "handing over (`LocalExecutor.submit`)",
        "driver": "the driver's own work (the rest)",
    }
    for key, label in names.items():
        print(f"| {label} | {statistics.median(parts[key]) * 1000:.3f} |")
    print(f"| floor: a no-op attempt to one worker and back, no store | {trip * 1000:.3f} |")


if __name__ == "__main__":
    main()
