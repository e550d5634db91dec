"""Partition status at scale: the partitions summary and pages, with 100,000 partitions and
1,000,000 runs in the store.

A throwaway project has one pipeline partitioned hourly from 2015-01-01 (UTC); the clock is
set where ``--partitions`` of its windows have ended. Its store is migrated to revision 0012
(before ``partition_status``), gets ``--runs`` runs written straight into ``runs`` (several
per partition, ids growing with creation time as ``new_run_id`` makes them; the newest run of
a partition mostly succeeded, some failed, canceled, running or queued; a few partitions
never run), and is then migrated to the head: the migration fills ``partition_status``
(its time is reported). Then each kind of call below goes through the door as the API and
the CLI call it, ``--calls`` times each after ``--warmup`` untimed rounds, kinds taking
turns; a figure is the wall time of one call. For comparison, the statement the status was
read with before (each partition's newest run grouped from every run of the pipeline) is
timed ``--old-calls`` times.

Kinds: the summary (counts, failed and missing ranges), the summary by month, the first
page of 100, a page of 100 from a cursor half-way, a page of failed partitions, a page of
missing ones within a year. Usage:

    .venv/bin/python bench/partition_status.py [--partitions 100000] [--runs 1000000]
        [--calls 50] [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        # (a new schema there, dropped at the end)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

START = datetime(2015, 1, 1, tzinfo=UTC)
CODE = """
from legato import pipeline, task
from legato.partitions import hourly


@task
def load() -> int:
    return 1


@pipeline(partitions=hourly(start="2015-01-01", tz="UTC"))
def hours():
    load()
"""
RUN_COLS = ("id", "pipeline", "state", "params", "partition", "code_version", "created_at",
            "started_at", "finished_at", "cancel_requested", "priority", "queue_position")
OLD_QUERY = """
SELECT runs.state, count(*) FROM runs JOIN (
  SELECT max(id) AS id FROM runs WHERE pipeline = 'hours' AND partition IS NOT NULL
  GROUP BY partition) newest ON newest.id = runs.id GROUP BY runs.state
"""


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def _newest_state(rng: random.Random) -> str:
    x = rng.random()
    for state, share in (("succeeded", 0.9), ("failed", 0.05), ("canceled", 0.03),
                         ("running", 0.01)):
        if x < share:
            return state
        x -= share
    return "queued"


def _rows(keys: list[str], n_runs: int, seed: int) -> list[tuple[Any, ...]]:
    """``n_runs`` runs over ``keys`` (2 % of them never run), oldest first."""
    rng = random.Random(seed)
    ran = [k for k in keys if rng.random() >= 0.02]
    per = [n_runs // len(ran)] * len(ran)
    for i in range(n_runs - sum(per)):
        per[i] += 1
    out = []
    at = START
    for round_ in range(max(per)):
        for key, n in zip(ran, per, strict=True):
            if round_ >= n:
                continue
            at += timedelta(milliseconds=7)
            last = round_ == n - 1
            state = _newest_state(rng) if last else rng.choice(("succeeded", "failed"))
            millis = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
            run_id = f"{millis:012x}{rng.getrandbits(32):08x}"
            naive = at.replace(tzinfo=None)
            done = naive if state in ("succeeded", "failed", "canceled") else None
            started = None if state == "queued" else naive
            out.append((run_id, "hours", state, "{}", key, "v1", naive, started, done, False,
                        0, 0))
    return out


def _write_runs(engine: Any, rows: list[tuple[Any, ...]]) -> None:
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        cols = ", ".join(RUN_COLS)
        if engine.dialect.name == "sqlite":
            marks = ", ".join("?" * len(RUN_COLS))
            for i in range(0, len(rows), 50_000):
                cur.executemany(f"INSERT INTO runs ({cols}) VALUES ({marks})",
                                [(*r[:6], *(None if v is None else v.isoformat(" ")
                                            for v in r[6:9]), *r[9:]) for r in rows[i:i + 50_000]])
        else:
            with cur.copy(f"COPY runs ({cols}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        cur.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--old-calls", type=int, default=5)
    ap.add_argument("--store-url", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from legato.clock import ManualClock
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace
    from legato.store import db, migrate

    tmp = Path(tempfile.mkdtemp(prefix="legato-bench-parts-"))
    schema = None
    if args.store_url:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        libpq = args.store_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(libpq, autocommit=True) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{args.store_url}?options={quote(f'-csearch_path={schema}', safe='')}"
    else:
        url = f"sqlite:///{tmp / 'store' / 'legato.db'}"
    try:
        root = tmp / "proj"
        root.mkdir()
        (root / "legato.toml").write_text(
            f'[project]\nname = "bench"\nmodules = ["flows"]\n\n[store]\nurl = "{url}"\n')
        (root / "flows.py").write_text(CODE)
        now = START + timedelta(hours=args.partitions)
        ws = Workspace(root, clock=ManualClock(now))
        door = ws.door(Actor.local_user())
        parts = door.project.pipeline("hours").automation.partitions
        assert parts is not None
        keys = parts.keys(now)
        assert len(keys) == args.partitions

        engine = db.create_engine(url)
        migrate.upgrade(engine, "0012")
        t0 = time.perf_counter()
        rows = _rows(keys, args.runs, seed=7)
        _write_runs(engine, rows)
        wrote = time.perf_counter() - t0
        t0 = time.perf_counter()
        migrate.upgrade(engine)
        filled = time.perf_counter() - t0
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        print(f"{len(rows)} runs over {len(keys)} partitions written in {wrote:.1f} s; "
              f"migration 0013 filled partition_status in {filled:.1f} s", flush=True)

        p = door.partitions
        half = keys[len(keys) // 2]
        year_first = keys[len(keys) // 4]  # a year's worth of hours (or a quarter of them)
        year_last = keys[len(keys) // 4 + min(8760, len(keys) // 4) - 1]
        kinds: dict[str, Callable[[], Any]] = {
            "summary": lambda: p.summary("hours"),
            "summary by month": lambda: p.summary("hours", granularity="month"),
            "page 1 (100)": lambda: p.page("hours"),
            "page from a cursor half-way": lambda: p.page("hours", cursor=half),
            "page of failed": lambda: p.page("hours", states=["failed"]),
            "page of missing within a year": lambda: p.page(
                "hours", states=["missing"], first=year_first, last=year_last),
        }
        got = p.summary("hours")
        with engine.connect() as conn:
            direct = {s: int(n) for s, n in conn.exec_driver_sql(OLD_QUERY)}
        assert {k: v for k, v in got.counts.items() if k != "never run"} == direct, (got, direct)
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for round_ in range(args.warmup + args.calls):
            for name, call in kinds.items():
                t0 = time.perf_counter()
                call()
                if round_ >= args.warmup:
                    times[name].append((time.perf_counter() - t0) * 1000)
        old: list[float] = []
        for _ in range(args.old_calls):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                list(conn.exec_driver_sql(OLD_QUERY))
            old.append((time.perf_counter() - t0) * 1000)
        report = {
            "backend": engine.dialect.name, "partitions": len(keys), "runs": len(rows),
            "fill_seconds": round(filled, 2), "load": os.getloadavg(),
            "machine": f"{platform.machine()} {os.cpu_count()} cpus",
            "ms": {k: {"p50": round(pct(v, 50), 1), "p95": round(pct(v, 95), 1)}
                   for k, v in times.items()},
            "old grouping of all runs (SQL only)": {
                "p50": round(pct(old, 50), 1), "p95": round(pct(old, 95), 1)},
        }
        print(json.dumps(report, indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))
        ws.close()
        engine.dispose()
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(libpq, autocommit=True) as c:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
