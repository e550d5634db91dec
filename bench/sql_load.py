"""SQL load of 1,000,000 rows into PostgreSQL: ``legato.connectors.sql.load`` against a plain
``COPY`` of the same frame (issue 15's target: within 2x).

    .venv/bin/python bench/sql_load.py [--rows 1000000] [--repeat 3] [--url URL]

The frame (pyarrow; int64, text, float64, int32, an aware timestamp, a date, a boolean) is
made once. Each figure is the median (and best) of ``--repeat`` runs, each into fresh tables
in a schema of its own (dropped at the end):

- plain COPY: the frame written as CSV by pyarrow and sent with psycopg's ``cursor.copy`` into
  a table made beforehand (not timed) — the fastest plain way from a frame; "keyed": into a
  table with a unique index on ``id``, as an upsert's table has;
- load append: ``load(engine, frame, table)``, the table made by it from the frame's schema;
- load upsert, missing table: ``load(..., mode="upsert", keys=["id"])`` making the table (and
  its unique index);
- load upsert, new rows: the same into an existing, empty keyed table: through the staging
  table and ``INSERT ... ON CONFLICT``;
- load upsert, all rows again: the same upsert once more, every row there and equal;
- load upsert, every row changed: then a frame whose ``amount`` differs in every row.

Ratios are to plain COPY into a table of the same kind (bare for append, keyed for upserts).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from legato.connectors.sql import load

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def frame(rows: int) -> pa.Table:
    rng = np.random.default_rng(15)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    stamps = start + rng.integers(0, 330 * 86_400_000_000, rows)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "customer": pa.array([f"customer-{i % 50_000:05d}" for i in range(rows)]),
            "amount": pa.array(rng.normal(100, 30, rows).round(2)),
            "qty": pa.array(rng.integers(1, 20, rows, dtype=np.int32)),
            "created_at": pa.array(stamps, pa.timestamp("us", "UTC")),
            "day": pa.array((stamps // 86_400_000_000).astype(np.int32), pa.date32()),
            "paid": pa.array(rng.random(rows) < 0.8),
        }
    )


DDL = (
    "CREATE TABLE {t} (id bigint NOT NULL, customer text, amount double precision, "
    "qty integer, created_at timestamptz, day date, paid boolean)"
)


def make_table(libpq: str, schema: str, table: str, keyed: bool) -> None:
    with psycopg.connect(libpq) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute(DDL.format(t=table))
        if keyed:
            conn.execute(f"CREATE UNIQUE INDEX {table}_id ON {table} (id)")


def plain_copy(libpq: str, schema: str, data: pa.Table, table: str, keyed: bool) -> float:
    make_table(libpq, schema, table, keyed)
    with psycopg.connect(libpq) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
            options = pacsv.WriteOptions(include_header=False)
            for batch in data.to_batches(100_000):
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                copy.write(buf.getbuffer())
        conn.commit()
        return time.perf_counter() - t0


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def one_round(
    engine: sa.Engine, libpq: str, schema: str, data: pa.Table, tag: str
) -> dict[str, float]:
    """Each way of loading ``data`` once, into tables named after ``tag``: seconds by label."""

    def upsert(table: str) -> None:
        load(engine, data, table, mode="upsert", keys=["id"])

    out = {
        "plain COPY": plain_copy(libpq, schema, data, f"copy_{tag}", False),
        "plain COPY, keyed": plain_copy(libpq, schema, data, f"kcopy_{tag}", True),
        "load append": timed(lambda: load(engine, data, f"append_{tag}")),
        "load upsert, missing table": timed(lambda: upsert(f"made_{tag}")),
    }
    make_table(libpq, schema, f"upsert_{tag}", keyed=True)
    out["load upsert, new rows"] = timed(lambda: upsert(f"upsert_{tag}"))
    out["load upsert, all rows again"] = timed(lambda: upsert(f"upsert_{tag}"))
    changed = data.set_column(2, "amount", pc.add(data.column("amount"), 1.0))
    out["load upsert, every row changed"] = timed(
        lambda: load(engine, changed, f"upsert_{tag}", mode="upsert", keys=["id"])
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    schema = f"bench_sql_load_{uuid.uuid4().hex[:8]}"
    libpq = args.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    engine = sa.create_engine(args.url, connect_args={"options": f"-csearch_path={schema}"})
    data = frame(args.rows)
    figures: dict[str, list[float]] = {}

    try:
        for i in range(args.repeat):
            for label, seconds in one_round(engine, libpq, schema, data, f"r{i}").items():
                figures.setdefault(label, []).append(seconds)
    finally:
        engine.dispose()
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    bare = statistics.median(figures["plain COPY"])
    keyed = statistics.median(figures["plain COPY, keyed"])
    print(f"{args.rows:,} rows, median (best) of {args.repeat}")
    print("| what | median | best | median / plain COPY |")
    print("|---|---|---|---|")
    for label, times in figures.items():
        med = statistics.median(times)
        base = keyed if "upsert" in label or "keyed" in label else bare
        print(f"| {label} | {med:.2f} s | {min(times):.2f} s | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
