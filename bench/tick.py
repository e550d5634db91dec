"""Cost of one scheduler tick on an empty store and on a store with 1,000,000 task runs.

The project has schedules (cron and every), a partitioned pipeline, two upstream-success
triggers and an active backfill, so ticks do real work. For each store size a fresh project
is made; the history (finished runs of 10 task runs each, with the 43 events a real 10-task
run writes) goes straight into the store's tables in one transaction: INSERTs over the
columns of ``legato.store.schema``, ``executemany`` in batches on the store's own engine.
Then ``Scheduler(door.automation).tick(now)`` is timed on a ManualClock moving 1 s per tick;
every 5 ticks (untimed) the runs queued so far are driven to the end in this process, so
the upstream triggers and the backfill keep firing. Every statement the ticks send is timed
too, and the slowest ones get an EXPLAIN QUERY PLAN. Usage:

    .venv/bin/python bench/tick.py [--sizes 0 1000000] [--ticks 200] [--json]
        [--try-index DDL]   # then time the slowest SELECT alone, before and after DDL
        [--sql STATEMENT]   # run on each store before the ticks (e.g. a proposed index)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FLOWS = '''
from legato import pipeline, task
from legato.partitions import daily
from legato.schedules import cron, every
from legato.triggers import on_success


@task(in_process=True)
def work(*args) -> None:
    return None


def chain():
    x = work()
    for _ in range(9):
        x = work(x)


@pipeline(schedule=every("10s"))
def frequent():
    chain()


@pipeline(schedule=cron("* * * * *"))
def minutely():
    chain()


@pipeline(schedule=cron("0 2 * * *", tz="Europe/Berlin"))
def nightly():
    chain()


@pipeline(partitions=daily(start="2020-01-01"), schedule="0 0 * * *")
def daily_part():
    chain()


@pipeline(partitions=daily(start="2020-01-01"), triggers=[on_success("daily_part")])
def after_daily():
    chain()


@pipeline(triggers=[on_success("frequent")])
def after_frequent():
    chain()
'''

# History is spread over these pipelines (two of them no longer in the code).
HISTORY_PIPELINES = [
    "frequent", "minutely", "nightly", "daily_part", "after_daily", "after_frequent",
    "retired_a", "retired_b",
]
PARTITIONED = {"daily_part", "after_daily"}
TASKS_PER_RUN = 10
# 00:00 UTC falls inside the ticks: minutely, daily_part and every("10s") all fire.
START = datetime(2026, 11, 20, 23, 58, 30, tzinfo=UTC)
BATCH = 50_000


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text(
        '[project]\nname = "tickbench"\nmodules = ["flows"]\n\n'
        '[executor]\nworkers = 2\nmode = "thread"\n',
        encoding="utf-8",
    )
    (root / "flows.py").write_text(FLOWS, encoding="utf-8")
    return root


# -- history ------------------------------------------------------------------------------


def _fmt(t: datetime) -> str:
    # What the store's UTCDateTime writes on SQLite (checked against it in fill_history).
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_sql(table: Any, skip: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    cols = [c.name for c in table.c if c.name not in skip]
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    return sql, cols


def fill_history(store: Any, n_task_runs: int, *, with_events: bool, days: float) -> dict:
    """Write n_task_runs / 10 finished runs, their task runs and events, in one transaction."""
    from legato.domain.ids import new_run_id
    from legato.store.schema import events, runs, task_runs

    n_runs = n_task_runs // TASKS_PER_RUN
    if n_runs == 0:
        return {"runs": 0, "task_runs": 0, "events": 0, "seconds": 0.0}
    engine = store._engine
    # The statements come from the schema; the values go to the DBAPI cursor as-is, with
    # datetimes written as the store's own column type would write them.
    proc = runs.c.created_at.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
    sample = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert proc is not None and proc(sample) == _fmt(sample), (proc(sample), _fmt(sample))
    run_sql, run_cols = _insert_sql(runs)
    tr_sql, tr_cols = _insert_sql(task_runs)
    ev_sql, ev_cols = _insert_sql(events, skip=("id",))
    assert run_cols[:3] == ["id", "pipeline", "state"] and tr_cols[0] == "run_id"
    assert ev_cols == ["run_id", "task_key", "kind", "old_state", "new_state", "at", "message"]

    rng = random.Random(42)
    end = START - timedelta(hours=1)
    span = timedelta(days=days)
    keys = ["work"] + [f"work_{j}" for j in range(2, TASKS_PER_RUN + 1)]
    t0 = time.perf_counter()
    n_events = 0
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        run_rows: list[tuple] = []
        tr_rows: list[tuple] = []
        ev_rows: list[tuple] = []

        def flush(final: bool = False) -> None:
            nonlocal n_events
            if run_rows and (final or len(tr_rows) >= BATCH):
                cur.executemany(run_sql, run_rows)
                cur.executemany(tr_sql, tr_rows)
                if ev_rows:
                    cur.executemany(ev_sql, ev_rows)
                n_events += len(ev_rows)
                run_rows.clear()
                tr_rows.clear()
                ev_rows.clear()

        for i in range(n_runs):
            created = end - span * (1 - i / n_runs)
            pipe = HISTORY_PIPELINES[i % len(HISTORY_PIPELINES)]
            rid = new_run_id(created, rng)
            failed = i % 50 == 49
            state = "failed" if failed else "succeeded"
            started = created + timedelta(milliseconds=300)
            finished = started + timedelta(seconds=12)
            c_s, s_s, f_s = _fmt(created), _fmt(started), _fmt(finished)
            partition = (created - timedelta(days=1)).strftime("%Y-%m-%d") if pipe in PARTITIONED \
                else None
            run_rows.append((
                rid, pipe, state, "{}", partition, "0123456789abcdef", c_s, s_s, f_s,
                None, None, None, None, 0, "boom" if failed else None, f"hist:{pipe}:{i}",
                0, int(created.timestamp() * 1_000_000), "schedule:schedule", None,
            ))
            for j, key in enumerate(keys):
                t_state = "failed" if failed and j == TASKS_PER_RUN - 1 else "succeeded"
                tr_rows.append((
                    rid, key, key, None, t_state, 1, s_s, f_s, None, None, "none", None, None,
                    "boom" if t_state == "failed" else None, None,
                ))
            if with_events:
                # The 43 events of a real 10-task run (see a `legato run`'s event log).
                ev_rows.extend((rid, k, "task_state", None, "pending", c_s, None) for k in keys)
                ev_rows.append((rid, None, "lease", None, None, s_s, "host:1:1:abc"))
                ev_rows.append((rid, None, "run_state", "queued", "running", s_s, None))
                for j, key in enumerate(keys):
                    last = "failed" if failed and j == TASKS_PER_RUN - 1 else "succeeded"
                    ev_rows.append((rid, key, "task_state", "pending", "queued", s_s, None))
                    ev_rows.append((rid, key, "task_state", "queued", "running", s_s, "attempt 1"))
                    ev_rows.append((rid, key, "task_state", "running", last, f_s, None))
                ev_rows.append((rid, None, "run_state", "running", state, f_s, None))
            flush()
        flush(final=True)
        cur.close()
    seconds = time.perf_counter() - t0
    # Read one back through the store: the rows must look like the store's own.
    first = store.browse.list_runs(limit=1)[0]
    assert first.created_at.tzinfo is not None and store.runs.get_task_runs(first.id)
    return {"runs": n_runs, "task_runs": n_runs * TASKS_PER_RUN, "events": n_events,
            "seconds": seconds}


# -- statement timing ---------------------------------------------------------------------


class StatementTimer:
    """Time of every statement sent through the engine, while ``on``."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.on = False
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.params: dict[str, Any] = {}
        self._t: list[float] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
            self._t.append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
            dt = time.perf_counter() - self._t.pop()
            if self.on:
                key = " ".join(stmt.split())
                self.total[key] += dt
                self.count[key] += 1
                if not many:
                    self.params[key] = params

    def top(self, n: int) -> list[tuple[str, float, int]]:
        ranked = sorted(self.total.items(), key=lambda kv: -kv[1])[:n]
        return [(k, t, self.count[k]) for k, t in ranked]


def explain(store: Any, stmt: str, params: Any) -> list[str]:
    with store._engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).all()
    return [str(r[-1]) for r in rows]


def time_statement(store: Any, stmt: str, params: Any, repeat: int = 30) -> float:
    """Median ms of a read statement run on its own."""
    times = []
    with store._engine.connect() as conn:
        for _ in range(repeat):
            t0 = time.perf_counter()
            conn.exec_driver_sql(stmt, params).all()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


# -- one store size -----------------------------------------------------------------------


def db_size(project: Path) -> int:
    base = project / ".legato" / "legato.db"
    return sum(p.stat().st_size for p in (base, Path(f"{base}-wal")) if p.exists())


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def bench_size(root: Path, n_task_runs: int, args: argparse.Namespace) -> dict[str, Any]:
    from legato.clock import ManualClock
    from legato.scheduler.tick import Scheduler
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

    project = make_project(root)
    clock = ManualClock(START)
    out: dict[str, Any] = {"task_runs_target": n_task_runs}
    with Workspace(project, clock=clock) as ws:
        store = ws.store
        out["history"] = fill_history(store, n_task_runs, with_events=not args.no_events,
                                      days=args.days)
        with store._engine.begin() as conn:
            for stmt in args.sql:
                conn.exec_driver_sql(stmt)
        with store._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        door = ws.door(Actor.local_user())
        auto = door.automation
        backfill = auto.create_backfill(
            "daily_part", first="2024-01-01", last="2025-12-31", all_partitions=True,
            max_concurrent=2,
        )
        sched = Scheduler(auto)
        timer = StatementTimer(store._engine)
        sched.tick(clock())  # first sight of every schedule and trigger: not counted
        times: list[float] = []
        created = 0
        ran = 0
        tick_created: list[int] = []
        for i in range(args.ticks):
            clock.advance(1.0)
            timer.on = True
            t0 = time.perf_counter()
            result = sched.tick(clock())
            times.append(time.perf_counter() - t0)
            timer.on = False
            if result.errors:
                raise SystemExit(f"tick errors: {result.errors}")
            created += len(result.created)
            tick_created.append(len(result.created))
            if (i + 1) % args.drive_every == 0:
                # What `legato up` would have done meanwhile: drive the queued runs to the end.
                for run in store.queue.queued_runs():
                    if door.runs.execute(run.id).state.value != "succeeded":
                        raise SystemExit(f"run {run.id} did not succeed")
                    ran += 1
        view = auto.backfill(backfill.id)
        ms = [t * 1000 for t in times]
        idle = [t for t, n in zip(ms, tick_created, strict=True) if n == 0]
        busy = [t for t, n in zip(ms, tick_created, strict=True) if n > 0]
        out.update(
            ticks=len(ms),
            median_ms=statistics.median(ms),
            p95_ms=pct(ms, 95),
            max_ms=max(ms),
            mean_ms=statistics.fmean(ms),
            idle_ticks=len(idle),
            idle_median_ms=statistics.median(idle) if idle else None,
            busy_ticks=len(busy),
            busy_median_ms=statistics.median(busy) if busy else None,
            sql_ms_per_tick=sum(timer.total.values()) * 1000 / len(ms),
            runs_created=created,
            runs_driven=ran,
            backfill_done=f"{view.done}/{view.total}",
            db_bytes=db_size(project),
        )
        per_tick = args.ticks
        top = []
        for stmt, total, count in timer.top(args.top):
            entry = {
                "sql": stmt,
                "ms_per_tick": total * 1000 / per_tick,
                "calls_per_tick": count / per_tick,
                "ms_per_call": total * 1000 / count,
            }
            params = timer.params.get(stmt)
            if stmt.lstrip().upper().startswith("SELECT") and params is not None:
                entry["plan"] = explain(store, stmt, params)
                entry["params"] = list(params)
            top.append(entry)
        out["top_statements"] = top
        out["daemon_queries"] = daemon_queries(store)
        if args.try_index:
            out["try_index"] = try_index(store, top, args.try_index)
    return out


def daemon_queries(store: Any) -> dict[str, dict[str, Any]]:
    """The reads `legato up` makes on every wake-up besides the tick (Fleet.start_queued,
    Fleet.adopt_orphans, the webhook's token check): median ms of 30 calls, and the plan."""
    from legato.domain.states import RunState

    calls = {
        "queued_runs(limit=114)": lambda: store.queue.queued_runs(limit=114),
        "running_counts()": store.running_counts,
        "list_backfills(active=True)": lambda: store.backfills.list_backfills(active=True),
        "runs_in_state(RUNNING)": lambda: store.runs.runs_in_state(RunState.RUNNING),
        "trigger_states()": store.trigger_states,
    }
    out: dict[str, dict[str, Any]] = {}
    for name, fn in calls.items():
        timer = StatementTimer(store._engine)
        timer.on = True
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        timer.on = False
        stmt, _, _ = timer.top(1)[0]
        out[name] = {
            "median_ms": statistics.median(times) * 1000,
            "plan": explain(store, stmt, timer.params[stmt]),
        }
    return out


def try_index(store: Any, top: list[dict[str, Any]], ddl: str) -> dict[str, Any]:
    """Time the slowest SELECT alone, create an index, time it again (plan before/after)."""
    sel = next((t for t in top if "plan" in t), None)
    if sel is None:
        return {}
    params = tuple(sel["params"])
    before = time_statement(store, sel["sql"], params)
    with store._engine.begin() as conn:
        conn.exec_driver_sql(ddl)
    after = time_statement(store, sel["sql"], params)
    return {
        "ddl": ddl,
        "sql": sel["sql"],
        "before_ms": before,
        "after_ms": after,
        "plan_after": explain(store, sel["sql"], params),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 1_000_000],
                    help="task runs of history per case")
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--drive-every", type=int, default=5,
                    help="drive the queued runs to the end after every N ticks")
    ap.add_argument("--days", type=float, default=365.0, help="time span of the history")
    ap.add_argument("--no-events", action="store_true", help="history without run events")
    ap.add_argument("--top", type=int, default=5, help="slowest statements to show")
    ap.add_argument("--sql", action="append", default=[],
                    help="a statement to run on each store before the ticks (repeatable)")
    ap.add_argument("--try-index", metavar="DDL",
                    help="after timing, create this index and time the slowest SELECT again")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="legato-tick-") as tmp:
        for i, size in enumerate(args.sizes):
            results.append(bench_size(Path(tmp) / f"case{i}", size, args))
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "ticks": args.ticks,
        "sql": args.sql,
        "loadavg_before": [round(x, 2) for x in load],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    print(f"machine: {meta['machine']}; {args.ticks} ticks 1 s apart per case; load "
          f"{meta['loadavg_before'][0]:.2f} -> {meta['loadavg_after'][0]:.2f}"
          + "".join(f"; {q}" for q in args.sql))
    print("| store | median | p95 | max | median, ticks creating no run / some | "
          "SQL per tick | runs created | database | history written in |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        h = r["history"]
        label = "empty" if not h["task_runs"] else (
            f"{h['task_runs']:,} task runs ({h['runs']:,} runs, {h['events']:,} events)")
        split = " / ".join(
            "-" if v is None else f"{v:.2f} ms ({n})"
            for v, n in ((r["idle_median_ms"], r["idle_ticks"]),
                         (r["busy_median_ms"], r["busy_ticks"]))
        )
        print(f"| {label} | {r['median_ms']:.2f} ms | {r['p95_ms']:.2f} ms | "
              f"{r['max_ms']:.2f} ms | {split} | {r['sql_ms_per_tick']:.2f} ms | "
              f"{r['runs_created']} | {r['db_bytes'] / 2**20:.1f} MiB | {h['seconds']:.1f} s |")
    for r in results:
        h = r["history"]
        print(f"\nSlowest statements, {h['task_runs']:,} task runs (ms per tick, calls per tick):")
        for s in r["top_statements"]:
            print(f"  {s['ms_per_tick']:7.3f} ms  x{s['calls_per_tick']:.2f}  {s['sql'][:150]}")
            for line in s.get("plan", []):
                print(f"             plan: {line}")
        print("  Other reads of each daemon wake-up (median of 30):")
        for name, q in r["daemon_queries"].items():
            print(f"  {q['median_ms']:7.3f} ms  {name}: {' / '.join(q['plan'])}")
        t = r.get("try_index")
        if t:
            print(f"  with {t['ddl']}: {t['before_ms']:.2f} ms -> {t['after_ms']:.2f} ms")
            for line in t["plan_after"]:
                print(f"             plan: {line}")


if __name__ == "__main__":
    main()
