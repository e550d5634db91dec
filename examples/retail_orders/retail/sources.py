"""Read the two order sources and the customer table into DataFrames of a common shape.

The shop database is whatever the ``shop_db`` resource connects to: the SQLite file
``data/shop.db`` in development, PostgreSQL in production. Legato's SQL connector reads it
(``legato.connectors.sql.extract``); the queries are plain SQL both understand.

Both sources end up with the columns in ``ORDER_COLUMNS``; ``ordered_at`` is still the
store's local wall-clock time as text, turned into UTC later by ``transform``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import IO, Any

import pandas as pd
from sqlalchemy import Engine

from legato.connectors import sql

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


def read_orders_export(file: IO[bytes] | IO[str] | Path) -> pd.DataFrame:
    """A CSV order export exactly as written (an open file or a path): every column as
    text, nothing dropped.

    Cleaning is left to ``transform.clean_export`` so that it can count what it removes.
    """
    return pd.read_csv(file, dtype=str, keep_default_na=False)


def read_shop_orders(shop_db: Engine) -> pd.DataFrame:
    """Orders from the shop database, renamed to the common order columns."""
    query = """
        SELECT order_id, customer_id, ordered_local AS ordered_at, store_tz,
               total_amount AS amount, currency, items
        FROM orders
        ORDER BY order_id
    """
    orders = sql.extract(shop_db, query)
    orders["amount"] = orders["amount"].astype("float64")
    orders["items"] = orders["items"].astype("int64")
    orders["source"] = "shop_db"
    return orders[ORDER_COLUMNS]


def read_customers(shop_db: Engine) -> pd.DataFrame:
    """Customer id, name and country from the shop database."""
    query = """
        SELECT customer_id, name AS customer_name, country
        FROM customers
        ORDER BY customer_id
    """
    customers: pd.DataFrame = sql.extract(shop_db, query)
    return customers


def refund_line(day: date) -> dict[str, Any]:
    """A refund the web shop's export wrote as an order, with a negative amount, at noon in
    Berlin on ``day``: the bad data that ``daily_sales``'s ``bad_data`` switch adds."""
    return {
        "order_id": "SO-100042-R",
        "customer_id": "C0001",
        "ordered_at": f"{day.isoformat()} 12:00:00",
        "store_tz": "Europe/Berlin",
        "amount": -24.99,
        "currency": "EUR",
        "items": 1,
        "source": "web_export",
    }
