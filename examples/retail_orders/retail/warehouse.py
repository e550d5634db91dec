"""The DuckDB warehouse: one table, ``daily_sales``, loaded a day at a time.

Loading is idempotent: the days being loaded are deleted and written again in one
transaction, so running a day twice leaves the same rows as running it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

TABLE = "daily_sales"

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    sales_day     DATE NOT NULL,          -- UTC day of the order
    country       VARCHAR NOT NULL,       -- customer's country, ISO 3166 alpha-2
    orders        INTEGER NOT NULL,
    revenue_eur   DECIMAL(14, 2) NOT NULL,
    loaded_by_run VARCHAR,                -- the Legato run that wrote the row
    loaded_at     TIMESTAMPTZ NOT NULL
)
"""


def replace_days(path: Path, daily: pd.DataFrame, days: Iterable[date], run_id: str) -> int:
    """Make ``daily`` the content of the table for ``days``; returns the rows written.

    ``days`` may name days that ``daily`` has no rows for: their old rows are removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    incoming = daily.assign(sales_day=pd.to_datetime(daily["sales_day"]).dt.date)
    con = duckdb.connect(str(path))
    try:
        con.execute(CREATE_TABLE)
        con.register("incoming", incoming)
        con.execute("BEGIN TRANSACTION")
        try:
            for day in sorted(set(days)):
                con.execute(f"DELETE FROM {TABLE} WHERE sales_day = ?", [day])
            con.execute(
                f"""
                INSERT INTO {TABLE}
                SELECT CAST(sales_day AS DATE), country, orders, revenue_eur, ?, now()
                FROM incoming
                """,
                [run_id],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return len(incoming)


def table_stats(path: Path) -> dict[str, object]:
    """Days, rows and total revenue now in the table, for a run's summary."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        days, rows, revenue = con.execute(
            f"SELECT count(DISTINCT sales_day), count(*), coalesce(sum(revenue_eur), 0) "
            f"FROM {TABLE}"
        ).fetchone()
    finally:
        con.close()
    return {"days": int(days), "rows": int(rows), "revenue_eur": float(revenue)}


INCOMING_TABLE = "incoming_orders"


def append_incoming(path: Path, orders: pd.DataFrame, file_name: str, run_id: str) -> int:
    """Append the rows of one dropped file, tagged with its name and run; returns the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = orders.astype(str).assign(source_file=file_name, run_id=run_id)
    con = duckdb.connect(str(path))
    try:
        con.register("rows", rows)
        con.execute(f"CREATE TABLE IF NOT EXISTS {INCOMING_TABLE} AS SELECT * FROM rows LIMIT 0")
        con.execute(f"INSERT INTO {INCOMING_TABLE} BY NAME SELECT * FROM rows")
    finally:
        con.close()
    return len(rows)
