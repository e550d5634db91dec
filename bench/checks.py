"""Data-quality checks benchmark: every built-in that applies, on a 10,000,000-row Parquet
output of a few columns, read as an Arrow table (issue 16's target: the built-ins together
under 2 s). Usage:

    .venv/bin/python bench/checks.py [--rows 10000000] [--repeat 3]

Writes the Parquet file under a temporary folder, reads it once, then times each check's
``legato.quality.evaluate`` (median and best of the repeats) and prints Markdown rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CUSTOMERS = 100_000
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def write_orders(path: Path, rows: int, failing: bool = False) -> None:
    """Orders: a random 62-bit token, a unique increasing id, a unique reference in random
    order (a permutation of the ids), a customer among CUSTOMERS, a status among four, an
    amount and a creation time over the last day (the newest a minute before NOW)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    statuses = pa.array(["new", "paid", "shipped", "returned"])
    start = np.datetime64(NOW.replace(tzinfo=None) - timedelta(days=1), "us")
    seconds = np.sort(rng.integers(0, 86_340, rows)).astype("timedelta64[s]")
    order_id = np.arange(rows, dtype=np.int64)
    reference = rng.permutation(rows).astype(np.int64)
    customer_id = rng.integers(0, CUSTOMERS, rows, dtype=np.int64)
    status = rng.integers(0, 4, rows, dtype=np.int32)
    amount = rng.random(rows) * 100
    missing = np.zeros(rows, dtype=np.bool_)
    if failing:
        # One row in a hundred breaks each rule: every row-wise check fails, and counts and
        # samples its 100,000 failing rows.
        order_id[1::100] = order_id[0::100][: len(order_id[1::100])]
        reference[1::100] = reference[0::100][: len(reference[1::100])]
        customer_id[2::100] = CUSTOMERS + 1
        status[3::100] = 4
        amount[4::100] = -1.0
        missing[5::100] = True
        seconds -= np.timedelta64(3, "h")
        statuses = pa.array(["new", "paid", "shipped", "returned", "lost"])
    token = rng.integers(0, 2**62, rows, dtype=np.int64)
    if failing:
        token[6::100] = token[0::100][: len(token[6::100])]
    table = pa.table(
        {
            "token": token,
            "order_id": order_id,
            "reference": reference,
            "customer_id": customer_id,
            "status": pa.DictionaryArray.from_arrays(pa.array(status), statuses),
            "amount": pa.array(amount, mask=missing),
            "created_at": pa.array(start + seconds, type=pa.timestamp("us")),
        }
    )
    pq.write_table(table, path)


def amount_at_least_0(table: Any) -> Any:
    import pyarrow.compute as pc

    return pc.greater_equal(table["amount"], 0)


def checks(frame: str, hashed: bool = False) -> list[Any]:
    from legato import checks as c

    return [
        *([c.unique("token")] if hashed else []),
        c.not_null("order_id", "customer_id", "amount"),
        c.unique("order_id"),
        c.unique("reference"),
        c.accepted_values("status", ["new", "paid", "shipped", "returned"]),
        c.row_count(min=1),
        c.schema(
            {
                "order_id": "int64",
                "reference": "int64",
                "customer_id": "int64",
                "status": "string",
                "amount": "double",
                "created_at": "timestamp[us]",
            }
        ),
        c.relationship("customer_id", "shop.customers", "id"),
        c.freshness("created_at", "1h"),
        c.predicate(
            amount_at_least_0 if frame == "arrow" else lambda f: f["amount"] >= 0,
            name="amount >= 0",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--failing",
        action="store_true",
        help="break each rule in one row of a hundred: time checks that fail",
    )
    ap.add_argument(
        "--hashed",
        action="store_true",
        help="also check a key of random 62-bit integers unique: one that has to be hashed",
    )
    ap.add_argument(
        "--frame",
        choices=["arrow", "pandas", "polars"],
        default="arrow",
        help="check the output as this kind of frame (read from the Parquet file)",
    )
    args = ap.parse_args()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from legato.quality import evaluate, evaluate_all

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, pyarrow {pa.__version__}, rows={args.rows}, "
        f"repeat={args.repeat}, frame={args.frame}, failing={args.failing}, hashed={args.hashed}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.parquet"
        write_orders(path, args.rows, args.failing)
        began = time.perf_counter()
        table = pq.read_table(path)
        if args.frame == "pandas":
            table = table.to_pandas()
        elif args.frame == "polars":
            import polars as pl

            table = pl.from_arrow(table)
        print(
            f"read as {args.frame}, {path.stat().st_size / 1e6:.0f} MB of Parquet in "
            f"{time.perf_counter() - began:.2f} s"
        )
    customers = {"shop.customers": pa.table({"id": pa.array(range(CUSTOMERS))})}
    print("| check | outcome | median | best |\n|---|---|---|---|")
    medians, last = [], []
    for check in checks(args.frame, args.hashed):
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            outcome = evaluate(check, table, now=NOW, related=customers)
            times.append(time.perf_counter() - began)
        if outcome.outcome == "error":
            raise SystemExit(f"{check.name}: {outcome.message}")
        medians.append(statistics.median(times))
        last.append(outcome)
        print(
            f"| {check.name} | {outcome.outcome} | {medians[-1] * 1000:.0f} ms "
            f"| {min(times) * 1000:.0f} ms |"
        )
    print(f"| sum of the above (each converts the frame) | | {sum(medians) * 1000:.0f} ms | |")
    together = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        outcomes = evaluate_all(checks(args.frame, args.hashed), table, now=NOW, related=customers)
        together.append(time.perf_counter() - began)
    assert [o.outcome for o in outcomes] == [o.outcome for o in last]
    print(
        f"| all of them, one `evaluate_all` (one conversion) | "
        f"| {statistics.median(together) * 1000:.0f} ms | {min(together) * 1000:.0f} ms |"
    )


if __name__ == "__main__":
    main()
