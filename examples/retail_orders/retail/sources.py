"""Read the two order sources and the customer table into DataFrames of a common shape.

Both sources end up with the columns in ``ORDER_COLUMNS``; ``ordered_at`` is still the
store's local wall-clock time as text, turned into UTC later by ``transform``.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd

ORDER_COLUMNS = [
    "order_id",
    "customer_id",
    "ordered_at",  # local time of the store, "YYYY-MM-DD HH:MM:SS"
    "store_tz",  # IANA time zone of the store, e.g. "Europe/Berlin"
    "amount",  # in the store's currency
    "currency",
    "items",
    "source",  # "web_export" or "shop_db"
]


def read_orders_export(path: Path) -> pd.DataFrame:
    """The web shop's CSV export exactly as written: every column as text, nothing dropped.

    Cleaning is left to ``transform.clean_export`` so that it can count what it removes.
    """
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: the pipeline must never change the shop's database, and must not create an
    # empty one when the path is wrong.
    if not path.is_file():
        raise FileNotFoundError(f"shop database not found: {path}")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)


def read_shop_orders(path: Path) -> pd.DataFrame:
    """Orders from the shop database, renamed to the common order columns."""
    query = """
        SELECT order_id, customer_id, ordered_local AS ordered_at, store_tz,
               total_amount AS amount, currency, items
        FROM orders
        ORDER BY order_id
    """
    with closing(_connect_read_only(path)) as con:
        orders = pd.read_sql_query(query, con)
    orders["amount"] = orders["amount"].astype("float64")
    orders["items"] = orders["items"].astype("int64")
    orders["source"] = "shop_db"
    return orders[ORDER_COLUMNS]


def read_customers(path: Path) -> pd.DataFrame:
    """Customer id, name and country from the shop database."""
    query = """
        SELECT customer_id, name AS customer_name, country
        FROM customers
        ORDER BY customer_id
    """
    with closing(_connect_read_only(path)) as con:
        return pd.read_sql_query(query, con)
