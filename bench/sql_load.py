"""SQL load of 1,000,000 rows into PostgreSQL: ``legato.connectors.sql.load`` against a plain
``COPY`` of the same frame (issue 15's target: within 2x).

    .venv/bin/python bench/sql_load.py [--rows 1000000] [--repeat 3] [--url URL]

The frame (pyarrow; int64, text, float64, int32, an aware timestamp, a date, a boolean) is
made once. Each figure is the median (and best) of ``--repeat`` runs, each into a fresh table
in a schema of its own (dropped at the end):

- plain COPY: the frame written as CSV by pyarrow and sent with psycopg's ``cursor.copy`` into
  a table made beforehand (not timed) — the fastest plain way from a frame;
- load append: ``load(url, frame, table)``, the table made by it from the frame's schema;
- load upsert, new rows: ``load(..., mode="upsert", keys=["id"])`` into a missing table (made
  with its unique index), every row inserted through the staging table;
- load upsert, all rows again: the same upsert once more, every row updated.
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
    "CREATE TABLE {t} (id bigint, customer text, amount double precision, qty integer, "
    "created_at timestamptz, day date, paid boolean)"
)


def plain_copy(libpq: str, schema: str, data: pa.Table, table: str) -> float:
    with psycopg.connect(libpq) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute(DDL.format(t=table))
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
            figures.setdefault("plain COPY", []).append(
                plain_copy(libpq, schema, data, f"copy_{i}")
            )
            figures.setdefault("load append", []).append(
                timed(lambda i=i: load(engine, data, f"append_{i}"))
            )
            figures.setdefault("load upsert, new rows", []).append(
                timed(lambda i=i: load(engine, data, f"upsert_{i}", mode="upsert", keys=["id"]))
            )
            figures.setdefault("load upsert, all rows again", []).append(
                timed(lambda i=i: load(engine, data, f"upsert_{i}", mode="upsert", keys=["id"]))
            )
    finally:
        engine.dispose()
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    base = statistics.median(figures["plain COPY"])
    print(f"{args.rows:,} rows, median (best) of {args.repeat}")
    print("| what | median | best | median / plain COPY |")
    print("|---|---|---|---|")
    for label, times in figures.items():
        med = statistics.median(times)
        print(f"| {label} | {med:.2f} s | {min(times):.2f} s | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
