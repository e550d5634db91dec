"""Cleaning and shaping of order data. Plain functions on DataFrames, no Legato in here."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from retail.sources import ORDER_COLUMNS

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

# When an order is in both sources, the shop database is the system of record: its row wins.
SOURCE_PRIORITY = {"shop_db": 0, "web_export": 1}

# Fixed book rates for the reporting week: euros per unit of each currency. A real
# project would read them from finance's rate table; fixed numbers keep the example simple.
EUR_PER_UNIT = {"EUR": 1.0, "USD": 0.93, "JPY": 0.0061}


def clean_export(raw: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Tidy the raw CSV export; returns the orders and how many rows had no usable amount.

    Strips stray spaces from every field, upper-cases currency codes, parses amounts and
    item counts, and drops rows without an amount (unconfirmed payments). Repeated lines
    are left in: ``deduplicate_orders`` removes them together with cross-source repeats.
    """
    orders = raw.apply(lambda column: column.str.strip())
    orders["currency"] = orders["currency"].str.upper()
    orders["amount"] = pd.to_numeric(orders["amount"], errors="coerce")
    no_amount = orders["amount"].isna()
    orders = orders[~no_amount].copy()
    orders["items"] = pd.to_numeric(orders["items"]).astype("int64")
    orders["source"] = "web_export"
    return orders[ORDER_COLUMNS].reset_index(drop=True), int(no_amount.sum())


def to_utc(local: pd.Series, time_zones: pd.Series) -> pd.Series:
    """Local wall-clock times (text) of the given IANA time zones, as UTC timestamps.

    Each time zone's rows are localized with ``zoneinfo`` and converted together. A wall
    time that occurs twice (the hour after a DST switch back) is read as the first of the
    two; one that does not exist (skipped by a switch forward) is moved forward.
    """
    parsed = pd.to_datetime(local, format=LOCAL_FORMAT)
    out = pd.Series(pd.NaT, index=local.index, dtype="datetime64[ns, UTC]")
    for name, rows in time_zones.groupby(time_zones).groups.items():
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown store time zone {name!r}") from None
        out.loc[rows] = (
            parsed.loc[rows]
            .dt.tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
            .dt.tz_convert("UTC")
        )
    return out


def normalize_timestamps(orders: pd.DataFrame) -> pd.DataFrame:
    """Replace the local ``ordered_at`` text by ``ordered_at_utc``; add the UTC ``sales_day``.

    The local time is kept as ``ordered_at_local`` for tracing an order back to its source.
    """
    out = orders.rename(columns={"ordered_at": "ordered_at_local"})
    out["ordered_at_utc"] = to_utc(out["ordered_at_local"], out["store_tz"])
    out["sales_day"] = out["ordered_at_utc"].dt.date
    return out


def filter_day(orders: pd.DataFrame, day: date) -> pd.DataFrame:
    """Only the orders whose UTC sales day is ``day``."""
    return orders[orders["sales_day"] == day].reset_index(drop=True)


def deduplicate_orders(orders: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per order_id; returns the orders and how many rows were dropped.

    Where an order appears more than once (a repeated export line, or an order in both
    sources) the row from the source first in ``SOURCE_PRIORITY`` is kept.
    """
    rank = orders["source"].map(SOURCE_PRIORITY).fillna(len(SOURCE_PRIORITY))
    unique = (
        orders.assign(_rank=rank)
        .sort_values(["order_id", "_rank"], kind="stable")
        .drop_duplicates("order_id", keep="first")
        .drop(columns="_rank")
    )
    if "ordered_at_utc" in unique.columns:
        unique = unique.sort_values(["ordered_at_utc", "order_id"], kind="stable")
    return unique.reset_index(drop=True), len(orders) - len(unique)


def join_customers(orders: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Add the customer's name and country; orders of unknown customers keep empty values."""
    return orders.merge(
        customers[["customer_id", "customer_name", "country"]],
        on="customer_id",
        how="left",
        validate="many_to_one",
    )


def aggregate_daily_sales(orders: pd.DataFrame, min_amount: float = 0.0) -> pd.DataFrame:
    """Orders and revenue (EUR at the book rates) per UTC sales day and customer country.

    Orders below ``min_amount`` (in their own currency) are left out.
    """
    counted = orders[orders["amount"] >= min_amount]
    # astype: an empty selection maps to an object column, which cannot multiply.
    revenue = counted["amount"] * counted["currency"].map(EUR_PER_UNIT).astype("float64")
    daily = (
        counted.assign(revenue_eur=revenue)
        .groupby(["sales_day", "country"], as_index=False)
        .agg(orders=("order_id", "count"), revenue_eur=("revenue_eur", "sum"))
        .sort_values(["sales_day", "country"])
        .reset_index(drop=True)
    )
    daily["orders"] = daily["orders"].astype("int64")
    daily["revenue_eur"] = daily["revenue_eur"].round(2)
    return daily
