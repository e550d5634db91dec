"""Cleaning and shaping of order data. Plain functions on DataFrames, no Legato in here."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from retail.sources import ORDER_COLUMNS

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

# When an order is in both sources, the shop database is the system of record: its row wins.
SOURCE_PRIORITY = {"shop_db": 0, "web_export": 1}

RATE_COLUMNS = ["sales_day", "currency", "eur_per_unit"]


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


def rates_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    """The rates API's records (``day``, ``currency``, ``eur_per_unit``) as a frame keyed by
    ``sales_day`` (a date, as the orders' is) and ``currency``."""
    rates = pd.DataFrame(records, columns=["day", "currency", "eur_per_unit"])
    rates["sales_day"] = pd.to_datetime(rates["day"]).dt.date
    rates["eur_per_unit"] = rates["eur_per_unit"].astype("float64")
    return rates[RATE_COLUMNS]


def aggregate_daily_sales(
    orders: pd.DataFrame, rates: pd.DataFrame, min_amount: float = 0.0
) -> pd.DataFrame:
    """Orders and revenue (EUR at each UTC sales day's rate) per sales day and customer
    country; ``rates`` as ``rates_frame`` makes it.

    Orders below ``min_amount`` (in their own currency) are left out. An order whose day and
    currency has no rate is a ValueError naming it: revenue must not silently go missing.
    """
    counted = orders[orders["amount"] >= min_amount].merge(
        rates, on=["sales_day", "currency"], how="left", validate="many_to_one"
    )
    unrated = counted[counted["eur_per_unit"].isna()]
    if not unrated.empty:
        first = unrated.iloc[0]
        raise ValueError(
            f"{len(unrated)} orders have no exchange rate for their day and currency, "
            f"the first: {first['order_id']} ({first['currency']} on {first['sales_day']})"
        )
    revenue = counted["amount"] * counted["eur_per_unit"].astype("float64")
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


def summary_rows(daily: pd.DataFrame, run_id: str) -> list[dict[str, object]]:
    """The daily sales as plain JSON-ready rows, each naming the run that loaded it: what
    the activation step sends to the webhook and the message queue."""
    return [
        {
            "sales_day": pd.Timestamp(row.sales_day).date().isoformat(),
            "country": str(row.country),
            "orders": int(row.orders),
            "revenue_eur": float(row.revenue_eur),
            "run_id": run_id,
        }
        for row in daily.itertuples(index=False)
    ]
