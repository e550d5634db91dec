"""Latency of the runs API and the run page over real HTTP, on a store with 100,000 runs.

A throwaway project (four pipelines of ``--tasks-per-run`` tasks each, one of them partitioned
daily) gets a history written straight into its store: ``--runs`` runs of ``--tasks-per-run``
task runs each over ``--days`` days, with their attempts (one per task that ran; a retried
or failed task has two) and the events the engine writes for such a run (47 for a 10-task
run with a retry, see a `legato run`'s event log), a mix of states (mostly succeeded; failed,
canceled, a few running and queued at the end), origins and partitions. The rows are INSERTs
over the columns of ``legato.store.schema`` in one transaction (``executemany`` on SQLite,
``COPY`` on PostgreSQL), on the store's own engine. Then a real server runs as a subprocess
(``legato web --project DIR --port N``) and every kind of request below is sent ``--requests``
times over one kept-alive HTTP connection (httpx), the kinds taking turns, after
``--warmup`` untimed rounds. A figure is the wall time of one request, response body read.

Kinds: the runs list (first page, limit 50), filtered by pipeline, by state=failed, by
pipeline + state (failed, succeeded or canceled), by two states at once, by partition (alone
and with its pipeline), by a created_at range (1 to 360 days wide, or open on one side; alone
and with a pipeline), page 51 reached by following ``next_cursor`` (unfiltered and within a
pipeline); one run (``GET /api/v1/runs/{id}``, random ids) and its HTML page
(``GET /runs/{id}``; reported as not measured if the server answers 404). Pipelines rotate
over all six, two of them retired (their runs are all old). Usage:

    .venv/bin/python bench/api.py [--runs 100000] [--tasks-per-run 10] [--requests 200]
        [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test]  # a new schema there,
                                                                        # dropped at the end
        [--sql STATEMENT]... [--explain] [--out results.json] [--keep]
        [--anonymous]  # no API token: to measure a Legato from before sign-in
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from latency import free_port, pct, tokens, wait_health  # the sibling script: one of each

LIST_TARGET_MS = 100.0  # p95 of every runs-list kind
RUN_TARGET_MS = 300.0  # p95 of one run (API and page)

PIPELINES = ["ingest", "daily_report", "ml_train", "sync_crm"]
# History share of each pipeline; two more no longer exist in the code: they stopped
# running 40 % and 90 % of the way back (their share goes to the others after that).
WEIGHTS = {
    "ingest": 0.50, "daily_report": 0.12, "ml_train": 0.08, "sync_crm": 0.20,
    "retired_export": 0.07, "retired_audit": 0.03,
}
RETIRED_AT = {"retired_export": 0.6, "retired_audit": 0.1}  # fraction of the span
PARTITIONED = "daily_report"
PARTITION_START = datetime(2020, 1, 1, tzinfo=UTC)
BATCH = 50_000  # task runs per executemany batch

FLOWS = '''
from legato import pipeline, task
from legato.partitions import daily
from legato.schedules import cron


@task
def step(*args) -> None:
    return None


def chain():
    x = step()
    for _ in range({more}):
        x = step(x)


@pipeline(schedule=cron("*/10 * * * *"))
def ingest(source: str = "s3"):
    chain()


@pipeline(partitions=daily(start="2020-01-01"), schedule="0 1 * * *")
def daily_report():
    chain()


@pipeline
def ml_train(epochs: int = 10):
    chain()


@pipeline(schedule=cron("0 * * * *"))
def sync_crm():
    chain()
'''


def make_project(root: Path, tasks_per_run: int, store_url: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    toml = '[project]\nname = "apibench"\nmodules = ["flows"]\n'
    if store_url:
        toml += f"\n[store]\nurl = {json.dumps(store_url)}\n"
    (root / "legato.toml").write_text(toml, encoding="utf-8")
    (root / "flows.py").write_text(FLOWS.format(more=tasks_per_run - 1), encoding="utf-8")
    return root


# -- PostgreSQL: a fresh schema --------------------------------------------------------------


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def pg_schema(server: str, keep: bool) -> Iterator[str]:
    """A new schema on ``server``; yields a store URL whose search_path is it; drops it after."""
    import psycopg

    schema = f"legato_bench_api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{server}?options={quote(f'-csearch_path={schema}', safe='')}"
    finally:
        if keep:
            print(f"schema {schema} kept", file=sys.stderr)
        else:
            with psycopg.connect(_libpq(server), autocommit=True) as conn:
                conn.execute("SET lock_timeout = '10s'")
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- history ---------------------------------------------------------------------------------


def _fmt(t: datetime) -> str:
    # What the store's UTCDateTime writes on SQLite (checked in fill); PostgreSQL parses it.
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _cols(table: Any, skip: tuple[str, ...] = ()) -> list[str]:
    return [c.name for c in table.c if c.name not in skip]


def _writes(table: Any, names: list[str], skip: tuple[str, ...] = ()) -> bool:
    """Whether writing ``names`` fills ``table``: its columns start with them, and any that
    a later schema added after them may stay empty (NULL)."""
    cols = _cols(table, skip)
    extra = [c for c in table.c if c.name not in skip and c.name not in names]
    return cols[: len(names)] == names and all(c.nullable for c in extra)


RUN_COLS = [
    "id", "pipeline", "state", "params", "partition", "code_version", "created_at",
    "started_at", "finished_at", "parent_run_id", "rerun_kind", "lease_owner",
    "lease_expires_at", "cancel_requested", "error", "run_key", "priority", "queue_position",
    "origin", "backfill_id",
]
TR_COLS = [
    "run_id", "task_key", "node", "map_index", "state", "attempt", "started_at", "finished_at",
    "next_attempt_at", "result_uri", "result_format", "item_count", "reused_from", "error",
    "worker",
]
AT_COLS = [
    "run_id", "task_key", "number", "outcome", "started_at", "finished_at", "error",
    "traceback", "log_path", "worker",
]
EV_COLS = ["run_id", "task_key", "kind", "old_state", "new_state", "at", "message"]

TRACEBACK = (
    'Traceback (most recent call last):\n  File "/srv/apibench/flows.py", line 9, in step\n'
    "    return load(args)\n  File \"/srv/apibench/io.py\", line 41, in load\n"
    "    raise ConnectionError(url)\nConnectionError: https://api.example.com/v2/items\n"
)


class History:
    """Rows of one run after another (deterministic for a seed)."""

    def __init__(self, n_runs: int, tasks: int, days: float, end: datetime,
                 code_versions: dict[str, str], root: Path, seed: int = 42) -> None:
        self.n_runs = n_runs
        self.tasks = tasks
        self.keys = ["step"] + [f"step_{j}" for j in range(2, tasks + 1)]
        self.end = end
        self.span = timedelta(days=days)
        self.code_versions = code_versions
        self.logs = str(root / ".legato" / "logs")
        self.rng = random.Random(seed)
        names = list(WEIGHTS)
        cum = 0.0
        self.cum: list[tuple[float, str]] = []
        for name in names:
            cum += WEIGHTS[name]
            self.cum.append((cum, name))
        self.n_partitions = max(1, int(n_runs * WEIGHTS[PARTITIONED] / 3))  # ~3 runs each

    def pick_pipeline(self, at: float) -> str:
        while True:
            x = self.rng.random()
            name = next((n for edge, n in self.cum if x < edge), self.cum[-1][1])
            if at < RETIRED_AT.get(name, 1.0):
                return name

    def run(self, i: int, runs: list, trs: list, ats: list, evs: list) -> None:
        from legato.domain.ids import new_run_id

        rng = self.rng
        tasks = self.tasks
        created = self.end - self.span * (1 - i / self.n_runs)
        pipe = self.pick_pipeline(i / self.n_runs)
        rid = new_run_id(created, rng)
        tail = self.n_runs - i  # 1 for the newest run
        x = rng.random()
        if tail <= 3:
            state = "running"
        elif tail <= 8:
            state = "queued"
        elif x < 0.07:
            state = "failed"
        elif x < 0.09:
            state = "canceled"
        else:
            state = "succeeded"
        params = "{}"
        origin = "manual"
        partition = None
        backfill = None
        if pipe == PARTITIONED:
            if rng.random() < 0.6:
                partition = (created - timedelta(days=1)).strftime("%Y-%m-%d")
                origin = "schedule:schedule"
            else:
                day = PARTITION_START + timedelta(days=rng.randrange(self.n_partitions))
                partition = day.strftime("%Y-%m-%d")
                backfill = f"bf{rng.randrange(40):04d}"
                origin = f"backfill:{backfill}"
        elif pipe in ("ingest", "sync_crm", "retired_export"):
            origin = "schedule:schedule"
            if pipe == "ingest":
                params = json.dumps({"source": rng.choice(["s3", "gcs", "ftp"])})
        elif pipe == "ml_train":
            params = json.dumps({"epochs": rng.choice([5, 10, 20])})
        c_s = _fmt(created)
        started = created + timedelta(milliseconds=rng.randint(50, 2000))
        s_s = _fmt(started) if state != "queued" else None
        # Task by task: which one fails / is canceled, and where the running run is.
        fail_at = rng.randrange(tasks) if state == "failed" else -1
        stop_at = rng.randrange(tasks) if state in ("canceled", "running") else -1
        retry_at = rng.randrange(tasks) if state != "queued" and rng.random() < 0.05 else -1
        run_error = None
        cv = self.code_versions.get(pipe, "0123456789abcdef")
        ev = evs.append
        for key in self.keys:
            ev((rid, key, "task_state", None, "pending", c_s, None))
        t = started
        finished: datetime | None = None
        if state != "queued":
            ev((rid, None, "lease", None, None, s_s, "web-1:4242:1:abc"))
            ev((rid, None, "run_state", "queued", "running", s_s, None))
        upstream_failed_from: str | None = None
        for j, key in enumerate(self.keys):
            if state == "queued" or (state == "running" and j > stop_at):
                trs.append((rid, key, key, None, "pending", 0, None, None, None, None, None,
                            None, None, None, None))
                continue
            if upstream_failed_from is not None or (state == "canceled" and j > stop_at):
                last = "upstream_failed" if state == "failed" else "canceled"
                msg = f"upstream failed: {upstream_failed_from}" if state == "failed" \
                    else "run canceled"
                ev((rid, key, "task_state", "pending", last, _fmt(t), msg))
                trs.append((rid, key, key, None, last, 0, None, _fmt(t), None, None, None,
                            None, None, None, None))
                if state == "failed":
                    upstream_failed_from = key
                continue
            log = f"{self.logs}/{rid}/{key}.%d.log"
            worker = f"pid {rng.randint(1000, 60000)}"
            t0 = t
            number = 1
            ev((rid, key, "task_state", "pending", "queued", _fmt(t), None))
            ev((rid, key, "task_state", "queued", "running", _fmt(t), "attempt 1"))
            if j in (retry_at, fail_at):
                t1 = t + timedelta(seconds=rng.uniform(0.2, 20))
                err = "ConnectionError: https://api.example.com/v2/items"
                ats.append((rid, key, 1, "failed", _fmt(t), _fmt(t1), err, TRACEBACK,
                            log % 1, worker))
                ev((rid, key, "attempt", None, "failed", _fmt(t1), f"attempt 1: {err}"))
                ev((rid, key, "task_state", "running", "up_for_retry", _fmt(t1),
                    "failed; retry in 10.0s"))
                t = t1 + timedelta(seconds=10)
                ev((rid, key, "task_state", "up_for_retry", "queued", _fmt(t), None))
                ev((rid, key, "task_state", "queued", "running", _fmt(t), "attempt 2"))
                t0 = t
                number = 2
            if state == "running" and j == stop_at:
                trs.append((rid, key, key, None, "running", number, _fmt(t0), None, None,
                            None, None, None, None, None, worker))
                continue
            t = t0 + timedelta(seconds=rng.uniform(0.2, 30))
            if j == fail_at:
                err = "ConnectionError: https://api.example.com/v2/items"
                ats.append((rid, key, number, "failed", _fmt(t0), _fmt(t), err, TRACEBACK,
                            log % number, worker))
                ev((rid, key, "attempt", None, "failed", _fmt(t), f"attempt {number}: {err}"))
                ev((rid, key, "task_state", "running", "failed", _fmt(t), err))
                trs.append((rid, key, key, None, "failed", number, _fmt(t0), _fmt(t), None,
                            None, None, None, None, err, None))
                upstream_failed_from = key
                run_error = f"1 task failed: {key}"
            elif state == "canceled" and j == stop_at:
                ats.append((rid, key, number, "canceled", _fmt(t0), _fmt(t), "canceled", None,
                            log % number, worker))
                ev((rid, key, "task_state", "running", "canceled", _fmt(t), "run canceled"))
                trs.append((rid, key, key, None, "canceled", number, _fmt(t0), _fmt(t), None,
                            None, None, None, None, "canceled", None))
                run_error = "canceled by operator"
            else:
                ats.append((rid, key, number, "succeeded", _fmt(t0), _fmt(t), None, None,
                            log % number, worker))
                ev((rid, key, "task_state", "running", "succeeded", _fmt(t), None))
                trs.append((rid, key, key, None, "succeeded", number, _fmt(t0), _fmt(t), None,
                            None, "none", None, None, None, None))
        if state in ("succeeded", "failed", "canceled"):
            finished = t + timedelta(milliseconds=5)
            ev((rid, None, "run_state", "running", state, _fmt(finished), run_error))
        lease_owner = "web-1:4242:1:abc" if state == "running" else None
        lease_exp = _fmt(datetime.now(UTC) + timedelta(days=1)) if state == "running" else None
        runs.append((
            rid, pipe, state, params, partition, cv, c_s, s_s,
            _fmt(finished) if finished else None, None, None, lease_owner, lease_exp,
            1 if state == "canceled" else 0, run_error,
            f"sched:{pipe}:{i}" if origin.startswith("schedule") else None,
            0, int(created.timestamp() * 1_000_000), origin, backfill,
        ))


def fill(store: Any, n_runs: int, tasks: int, days: float, root: Path,
         code_versions: dict[str, str]) -> dict[str, Any]:
    """Write the history in one transaction; returns counts and seconds."""
    from legato.store.schema import attempts, events, runs, task_runs

    assert _writes(runs, RUN_COLS) and _writes(task_runs, TR_COLS)
    assert _writes(attempts, AT_COLS) and _writes(events, EV_COLS, skip=("id",))
    engine = store._engine
    backend = engine.dialect.name
    proc = runs.c.created_at.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
    sample = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    if backend == "sqlite":
        assert proc is not None and proc(sample) == _fmt(sample), (proc(sample), _fmt(sample))
    hist = History(n_runs, tasks, days, datetime.now(UTC) - timedelta(minutes=5),
                   code_versions, root)
    tables = [("runs", RUN_COLS), ("task_runs", TR_COLS), ("attempts", AT_COLS),
              ("events", EV_COLS)]
    counts = dict.fromkeys([t for t, _ in tables], 0)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        buffers: list[list[tuple]] = [[], [], [], []]

        def write(final: bool = False) -> None:
            if not buffers[0] or not (final or len(buffers[1]) >= BATCH):
                return
            for (name, cols), rows in zip(tables, buffers, strict=True):
                if not rows:
                    continue
                if backend == "sqlite":
                    marks = ", ".join("?" * len(cols))
                    cur.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})",
                                    rows)
                else:
                    with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as cp:
                        for row in rows:
                            cp.write_row(row)
                counts[name] += len(rows)
                rows.clear()

        for i in range(n_runs):
            hist.run(i, *buffers)
            write()
        write(final=True)
        cur.close()
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    if backend == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        # What autovacuum does to tables that grew over a year; without it the planner
        # works from an empty table's guesses.
        with engine.begin() as conn:
            for name, _ in tables:
                conn.exec_driver_sql(f"ANALYZE {name}")
    # Read back through the store: rows look like its own.
    first = store.browse.list_runs(limit=1)[0]
    assert first.created_at.tzinfo is not None and store.runs.get_task_runs(first.id)
    return {**counts, "seconds": round(seconds, 2),
            "analyze_seconds": round(time.perf_counter() - t1, 2)}


# -- the server ------------------------------------------------------------------------------


# -- requests --------------------------------------------------------------------------------


Params = dict[str, Any]


def follow(client: Any, params: Params, pages: int) -> str | None:
    """The cursor of page ``pages + 1`` of a list (untimed)."""
    cursor = None
    for _ in range(pages):
        q = dict(params, limit=50)
        if cursor:
            q["cursor"] = cursor
        body = client.get("/api/v1/runs", params=q).json()
        cursor = body["next_cursor"]
        if cursor is None:
            return None
    return cursor


def sample_values(store: Any, rng: random.Random) -> dict[str, Any]:
    """Run ids, partitions and the time span to draw request parameters from."""
    from sqlalchemy import func, select

    from legato.store.schema import runs

    with store._engine.connect() as conn:
        ids = list(conn.execute(select(runs.c.id)).scalars())
        parts = list(conn.execute(
            select(runs.c.partition).where(runs.c.partition.is_not(None)).distinct()
        ).scalars())
        lo, hi = conn.execute(select(func.min(runs.c.created_at),
                                     func.max(runs.c.created_at))).one()
    return {"ids": ids, "partitions": sorted(parts), "first": lo, "last": hi}


def make_kinds(client: Any, store: Any, rng: random.Random, pages: int
               ) -> dict[str, Callable[[int], tuple[str, Params]]]:
    """Each kind: request number -> (path, query)."""
    v = sample_values(store, rng)
    ids: list[str] = v["ids"]
    partitions: list[str] = v["partitions"]
    first: datetime = v["first"]
    last: datetime = v["last"]
    pipes = [*PIPELINES, "retired_export", "retired_audit"]
    deep = follow(client, {}, pages)
    deep_pipe = {p: follow(client, {"pipeline": p}, pages) for p in ("ingest", "sync_crm")}

    widths = [1, 7, 30, 90, 360, None, None]  # days; None: open-ended on one side

    def time_range(i: int, **extra: Any) -> tuple[str, Params]:
        w = widths[i % len(widths)]
        q: Params = dict(extra, limit=50)
        if w is None:
            at = first + (last - first) * rng.random()
            q["created_after" if (i // len(widths)) % 2 else "created_before"] = at.isoformat()
        else:
            width = timedelta(days=w)
            start = first + (last - first - width) * rng.random()
            q["created_after"] = start.isoformat()
            q["created_before"] = (start + width).isoformat()
        return "/api/v1/runs", q

    states = ["failed", "succeeded", "canceled"]
    state_pairs = [["failed", "canceled"], ["queued", "running"], ["succeeded", "failed"]]
    kinds: dict[str, Callable[[int], tuple[str, Params]]] = {
        "list: first page": lambda i: ("/api/v1/runs", {"limit": 50}),
        "list: pipeline": lambda i: (
            "/api/v1/runs", {"pipeline": pipes[i % len(pipes)], "limit": 50}),
        "list: state=failed": lambda i: ("/api/v1/runs", {"state": "failed", "limit": 50}),
        "list: pipeline + state": lambda i: (
            "/api/v1/runs", {"pipeline": pipes[i % len(pipes)],
                             "state": states[(i // len(pipes)) % 3], "limit": 50}),
        "list: two states": lambda i: (
            "/api/v1/runs", {"state": state_pairs[i % 3], "limit": 50}),
        "list: partition": lambda i: (
            "/api/v1/runs", {"partition": rng.choice(partitions), "limit": 50}),
        "list: pipeline + partition": lambda i: (
            "/api/v1/runs", {"pipeline": PARTITIONED, "partition": rng.choice(partitions),
                             "limit": 50}),
        "list: created_at range": time_range,
        "list: pipeline + created_at range": lambda i: time_range(
            i, pipeline=pipes[(i // len(widths)) % len(pipes)]),
    }
    if deep:
        kinds[f"list: page {pages + 1} (cursor)"] = lambda i: (
            "/api/v1/runs", {"cursor": deep, "limit": 50})
    if all(deep_pipe.values()):
        names = list(deep_pipe)
        kinds[f"list: pipeline, page {pages + 1}"] = lambda i: (
            "/api/v1/runs", {"pipeline": names[i % 2], "cursor": deep_pipe[names[i % 2]],
                             "limit": 50})
    kinds["run: GET /api/v1/runs/{id}"] = lambda i: (f"/api/v1/runs/{rng.choice(ids)}", {})
    kinds["run page: GET /runs/{id}"] = lambda i: (f"/runs/{rng.choice(ids)}", {})
    return kinds


def check(kind: str, query: Params, body: Any) -> None:
    """The answer fits the filter (a cheap guard against measuring the wrong thing)."""
    if not kind.startswith("list"):
        return
    for r in body["runs"]:
        if "pipeline" in query:
            assert r["pipeline"] == query["pipeline"], (kind, r)
        if "state" in query:
            states = query["state"] if isinstance(query["state"], list) else [query["state"]]
            assert r["state"] in states, (kind, r)
        if "partition" in query:
            assert r["partition"] == query["partition"], (kind, r)


def measure(client: Any, kinds: dict[str, Callable[[int], tuple[str, Params]]],
            n: int, warmup: int) -> dict[str, dict[str, Any]]:
    times: dict[str, list[float]] = {k: [] for k in kinds}
    sizes: dict[str, list[int]] = {k: [] for k in kinds}
    status: dict[str, dict[int, int]] = {k: {} for k in kinds}
    skip: set[str] = set()
    for i in range(warmup + n):
        for kind, make in kinds.items():
            if kind in skip:
                continue
            path, query = make(i)
            t0 = time.perf_counter()
            resp = client.get(path, params=query)
            dt = time.perf_counter() - t0
            code = resp.status_code
            if code == 404 and kind.startswith("run page"):
                status[kind][code] = 1
                skip.add(kind)  # the route does not exist (yet): not measured
                continue
            if code != 200:
                raise SystemExit(f"{kind}: HTTP {code} for {path} {query}: {resp.text[:500]}")
            if i < warmup:
                continue
            status[kind][code] = status[kind].get(code, 0) + 1
            times[kind].append(dt * 1000)
            if kind.startswith("list"):
                body = resp.json()
                check(kind, query, body)
                sizes[kind].append(len(body["runs"]))
            else:
                sizes[kind].append(len(resp.content))
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        ms = times[kind]
        if not ms:
            out[kind] = {"measured": False, "status": status[kind]}
            continue
        target = LIST_TARGET_MS if kind.startswith("list") else RUN_TARGET_MS
        out[kind] = {
            "measured": True, "n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95),
            "max": max(ms), "mean": statistics.fmean(ms), "target_p95": target,
            "met": pct(ms, 95) < target,
            ("rows_mean" if kind.startswith("list") else "bytes_mean"):
                round(statistics.fmean(sizes[kind]), 1),
        }
    return out


# -- SQL plans -------------------------------------------------------------------------------


def sql_profile(store: Any, kinds: dict[str, Callable[[int], tuple[str, Params]]],
                variants: int = 14, repeat: int = 5) -> dict[str, Any]:
    """The statements the store sends for requests 0..variants-1 of each kind, timed on
    their own (median of ``repeat``); per kind and statement the slowest variant, its plan."""
    from sqlalchemy import event

    from legato.services.actor import Actor
    from legato.services.catalog import Catalog

    engine = store._engine
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
        if stmt.lstrip().upper().startswith("SELECT"):
            seen.append((stmt, params))

    class _WS:  # just enough of a Workspace for Catalog.runs / Catalog.run
        def __init__(self) -> None:
            self.store = store
            self.project = type("P", (), {"pipelines": {}})()

    catalog = Catalog(_WS(), Actor.local_user(), auto=object())  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for kind, make in kinds.items():
        if kind.startswith("run page"):
            continue
        worst: dict[str, dict[str, Any]] = {}
        for i in range(variants):
            path, q = make(i)
            seen.clear()
            event.listen(engine, "before_cursor_execute", grab)
            try:
                if kind.startswith("list"):
                    st = q.get("state", [])
                    catalog.runs(
                        pipeline=q.get("pipeline"), states=st if isinstance(st, list) else [st],
                        partition=q.get("partition"),
                        created_after=_dt(q.get("created_after")),
                        created_before=_dt(q.get("created_before")),
                        cursor=q.get("cursor"), limit=q.get("limit", 50),
                    )
                else:
                    catalog.run(path.rsplit("/", 1)[1])
            finally:
                event.remove(engine, "before_cursor_execute", grab)
            for n, (stmt, params) in enumerate(list(seen)):
                p = _plan(engine, stmt, params, repeat)
                p["query"] = {k: v for k, v in q.items() if k != "limit"} or path
                key = f"{n}:{p['sql']}"
                if key not in worst or p["median_ms"] > worst[key]["median_ms"]:
                    worst[key] = p
        out[kind] = list(worst.values())
    return out


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _plan(engine: Any, stmt: str, params: Any, repeat: int) -> dict[str, Any]:
    times = []
    with engine.connect() as conn:
        for _ in range(repeat):
            t0 = time.perf_counter()
            conn.exec_driver_sql(stmt, params).all()
            times.append((time.perf_counter() - t0) * 1000)
        if engine.dialect.name == "sqlite":
            plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt,
                                                             params)]
        else:
            plan = [str(r[0]) for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + stmt, params)]
    return {"sql": " ".join(stmt.split()), "median_ms": round(statistics.median(times), 3),
            "plan": plan}


# -- main ------------------------------------------------------------------------------------


def db_bytes(store: Any, project: Path) -> int | None:
    if store._engine.dialect.name == "sqlite":
        base = project / ".legato" / "legato.db"
        return sum(p.stat().st_size for p in (base, Path(f"{base}-wal")) if p.exists())
    with store._engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).scalar_one())


def backend_version(store: Any) -> str:
    if store._engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with store._engine.connect() as conn:
        v = conn.exec_driver_sql("SHOW server_version").scalar_one()
    return f"PostgreSQL {v}"


def fill_project(ws: Any, runs: int, tasks_per_run: int, days: float) -> dict[str, Any]:
    """Save the snapshots of the workspace's pipelines, then ``fill`` its store."""
    store = ws.store
    versions = {}
    for name, pipe in ws.project.pipelines.items():
        versions[name] = pipe.code_version
        store.runs.save_snapshot(name, pipe.code_version, pipe.snapshot(), ws.clock())
    print(f"filling {runs:,} runs x {tasks_per_run} task runs over {days:g} days "
          f"({backend_version(store)}) ...", file=sys.stderr, flush=True)
    filled = fill(store, runs, tasks_per_run, days, ws.config.root, versions)
    print(f"filled in {filled['seconds']:.1f} s: {filled}", file=sys.stderr, flush=True)
    return filled


@contextmanager
def legato_web(project: Path, tmp: Path, auth: dict[str, str]) -> Iterator[tuple[str, float]]:
    """``legato web`` on the project, as a subprocess in its own process group: yields its
    base URL and the seconds it took to answer; stopped (that group only) at the end."""
    port = free_port()
    log = tmp / "web.log"
    legato = str(Path(sys.executable).parent / "legato")
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            [legato, "web", "--project", str(project), "--port", str(port),
             "--host", "127.0.0.1"],
            stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        t0 = time.monotonic()
        wait_health(port, proc, log, 60, auth)
        yield f"http://127.0.0.1:{port}", time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group only
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run(args: argparse.Namespace, tmp: Path, store_url: str | None) -> dict[str, Any]:
    import httpx

    from legato.services.workspace import Workspace

    project = make_project(tmp / "proj", args.tasks_per_run, store_url)
    with Workspace(project) as ws:
        store = ws.store
        filled = fill_project(ws, args.runs, args.tasks_per_run, args.days)
        with store._engine.begin() as conn:
            for stmt in args.sql:
                t0 = time.perf_counter()
                conn.exec_driver_sql(stmt)
                print(f"{stmt}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        meta_store = {"backend": backend_version(store), "db_bytes": db_bytes(store, project),
                      "fill": filled}

    # Requests carry a viewer's API token: what a dashboard or a script sends.
    auth = {} if args.anonymous else tokens(project)[0]
    load_before = os.getloadavg()
    from legato.config import load_config
    from legato.store.store import Store

    with legato_web(project, tmp, auth) as (base, ready), \
            httpx.Client(base_url=base, timeout=60, headers=auth) as client, \
            Store.open(load_config(project).database_url, migrate=False) as store:
        rng = random.Random(7)
        kinds = make_kinds(client, store, rng, args.pages)
        results = measure(client, kinds, args.requests, args.warmup)
        profile = sql_profile(store, kinds) if args.explain else None
    return {
        "meta": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {platform.system()}",
            "runs": args.runs, "tasks_per_run": args.tasks_per_run, "days": args.days,
            "requests": args.requests, "warmup_rounds": args.warmup, "sql": args.sql,
            "server_ready_s": round(ready, 2), **meta_store,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "results": results,
        "sql_profile": profile,
    }


def report(out: dict[str, Any]) -> None:
    m = out["meta"]
    f = m["fill"]
    size = f"{m['db_bytes'] / 2**20:.1f} MiB" if m["db_bytes"] else "?"
    print(f"{m['machine']}; {m['backend']}; load {m['loadavg_before'][0]:.2f} -> "
          f"{m['loadavg_after'][0]:.2f}; server ready in {m['server_ready_s']:.2f} s")
    print(f"store: {f['runs']:,} runs, {f['task_runs']:,} task runs, {f['attempts']:,} attempts, "
          f"{f['events']:,} events; {size}; filled in {f['seconds']:.1f} s"
          + "".join(f"; {q}" for q in m["sql"]))
    print(f"{m['requests']} requests per kind after {m['warmup_rounds']} untimed rounds")
    print()
    print("| request | p50 | p95 | max | p95 target |")
    print("|---|---|---|---|---|")
    for kind, r in out["results"].items():
        if not r["measured"]:
            print(f"| {kind} | not measured (HTTP {', '.join(map(str, r['status']))}) | | | |")
            continue
        verdict = "met" if r["met"] else "**MISSED**"
        print(f"| {kind} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['max']:.1f} ms | "
              f"< {r['target_p95']:g} ms: {verdict} |")
    if out.get("sql_profile"):
        print()
        for kind, stmts in out["sql_profile"].items():
            for s in stmts:
                print(f"{kind}: {s['median_ms']:.2f} ms  {s['query']}  {s['sql'][:120]}")
                for line in s["plan"]:
                    print(f"    {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--tasks-per-run", type=int, default=10)
    ap.add_argument("--days", type=float, default=365.0, help="span of the runs' created_at")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per kind")
    ap.add_argument("--warmup", type=int, default=10, help="untimed rounds of every kind first")
    ap.add_argument("--pages", type=int, default=50, help="pages to follow for the deep page")
    ap.add_argument("--store-url", help="a PostgreSQL server/database: the store goes in a new "
                    "schema there, dropped at the end (default: SQLite in the project)")
    ap.add_argument("--sql", action="append", default=[],
                    help="a statement to run on the filled store before the server starts")
    ap.add_argument("--explain", action="store_true",
                    help="also the plan and time of each kind's statements (the slowest of 14 "
                    "requests of each kind)")
    ap.add_argument("--out", type=Path, help="write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the project (and the schema)")
    ap.add_argument("--anonymous", action="store_true",
                    help="send no API token: for a Legato from before sign-in")
    args = ap.parse_args()
    if args.tasks_per_run < 1 or args.runs < 20:
        raise SystemExit("--runs must be at least 20 and --tasks-per-run at least 1")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    tmp = Path(tempfile.mkdtemp(prefix="legato-apibench-"))
    try:
        if args.store_url:
            with pg_schema(args.store_url, args.keep) as url:
                out = run(args, tmp, url)
        else:
            out = run(args, tmp, None)
    finally:
        if args.keep:
            print(f"project kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out["meta"]["command"] = " ".join([".venv/bin/python", "bench/api.py", *sys.argv[1:]])
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    report(out)


if __name__ == "__main__":
    main()
