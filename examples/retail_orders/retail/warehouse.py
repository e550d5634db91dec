"""The DuckDB warehouse: one table, ``daily_sales``, loaded a day at a time.

Loading is idempotent: the days being loaded are deleted and written again in one
transaction, so running a day twice leaves the same rows as running it once.

The functions take what the ``duckdb`` resource hands a task, a ``DuckDBWarehouse``, whose
``connect()`` makes writers of every worker process take turns on the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

from legato.resources.duckdb import DuckDBWarehouse

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


def replace_days(
    warehouse: DuckDBWarehouse, daily: pd.DataFrame, days: Iterable[date], run_id: str
) -> int:
    """Make ``daily`` the content of the table for ``days``; returns the rows written.

    ``days`` may name days that ``daily`` has no rows for: their old rows are removed.
    """
    incoming = daily.assign(sales_day=pd.to_datetime(daily["sales_day"]).dt.date)
    with warehouse.connect() as con:
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
    return len(incoming)


def table_stats(warehouse: DuckDBWarehouse) -> dict[str, object]:
    """Days, rows and total revenue now in the table, for a run's summary."""
    with warehouse.connect(read_only=True) as con:
        days, rows, revenue = con.execute(
            f"SELECT count(DISTINCT sales_day), count(*), coalesce(sum(revenue_eur), 0) "
            f"FROM {TABLE}"
        ).fetchone()
    return {"days": int(days), "rows": int(rows), "revenue_eur": float(revenue)}


INCOMING_TABLE = "incoming_orders"


def append_incoming(
    warehouse: DuckDBWarehouse, orders: pd.DataFrame, file_name: str, run_id: str
) -> int:
    """Append the rows of one dropped file, tagged with its name and run; returns the rows."""
    rows = orders.astype(str).assign(source_file=file_name, run_id=run_id)
    with warehouse.connect() as con:
        con.register("rows", rows)
        con.execute(f"CREATE TABLE IF NOT EXISTS {INCOMING_TABLE} AS SELECT * FROM rows LIMIT 0")
        con.execute(f"INSERT INTO {INCOMING_TABLE} BY NAME SELECT * FROM rows")
    return len(rows)
