"""The data products the pipelines make, declared once: each task says which of them its
output is (``@task(produces=...)``), and Legato draws the lineage and keeps the catalog
(``legato assets``) from that alone.

Sources (the web shop's export, the shop's orders and customers) -> the cleaned orders ->
the daily sales -> the warehouse table that reports read; and the per-store reports.
"""

from __future__ import annotations

from datetime import timedelta

from legato import Asset

WEB_ORDERS = Asset(
    "webshop.orders_export",
    description="The web shop's nightly CSV export of its orders, tidied; rows without an "
    "amount (unconfirmed payments) dropped.",
    owner="web-shop team",
    tags=("source",),
)
SHOP_ORDERS = Asset(
    "shop.orders",
    description="The orders of the shop's database: in-store, app and the web orders its "
    "sync job copied over.",
    owner="shop back-end team",
    tags=("source",),
)
CUSTOMERS = Asset(
    "shop.customers",
    description="Customer ids, names and countries from the shop's database.",
    owner="shop back-end team",
    tags=("source",),
)
CLEANED_ORDERS = Asset(
    "retail.cleaned_orders",
    description="One row per order from both sources, with its UTC time and sales day and its "
    "customer's name and country: what the sales are counted from.",
    owner="data engineering",
)
DAILY_SALES = Asset(
    "retail.daily_sales",
    description="Orders and revenue in EUR (at each day's rate) per UTC day and customer "
    "country, ready to load.",
    owner="data engineering",
)
WAREHOUSE_DAILY_SALES = Asset(
    "warehouse.daily_sales",
    description="The warehouse's daily_sales table in DuckDB, which the finance dashboards "
    "read; each run replaces the days it loads.",
    owner="finance analytics",
    tags=("warehouse",),
    # Loaded at 02:30 UTC for the day that closed at midnight: a day not in the warehouse
    # six hours after it ended is late.
    freshness=timedelta(hours=6),
)
STORE_REPORTS = Asset(
    "reports.store_reports",
    description="One row per store: orders, revenue in the store's currency, average order "
    "and busiest local hour.",
    owner="store operations",
    tags=("report",),
)
