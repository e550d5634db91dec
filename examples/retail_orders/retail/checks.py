"""The data-quality checks the pipelines declare on what their tasks produce
(``@task(checks=[...])``, docs/checks.md).

A run evaluates them on each task's output as soon as it is stored. A ``block`` check that
fails fails its task before any downstream task reads the output, and says which rows
failed; a ``warn`` check is recorded and the run goes on. Every result is kept:
``legato checks``, the run page and each asset's page show them.
"""

from __future__ import annotations

from legato import checks
from retail.rates import CURRENCIES

# The shop's orders, checked in the shop database itself (the ``shop_db`` resource of the
# environment): every order's customer is in its customers table. The query runs there;
# nothing is loaded for it.
SHOP_ORDERS = [
    checks.relationship(
        "customer_id",
        "shop.customers",
        "customer_id",
        table="orders",
        to_table="customers",
        resource="shop_db",
        description="every order of the shop database names a customer it has",
    ),
]

# The cleaned orders, before anything is counted from them. All block: an order counted
# twice, a negative amount or a currency without a rate would put wrong numbers in the
# warehouse.
CLEANED_ORDERS = [
    checks.not_null("order_id", "customer_id", "ordered_at_utc", "amount"),
    checks.unique("order_id", description="one row per order, after deduplication"),
    checks.sql(
        "SELECT order_id, customer_id, store_tz, amount, currency, source "
        "FROM data WHERE amount < 0",
        name="amount >= 0",
        description="a refund or a bad export line must not be counted as a sale",
    ),
    checks.accepted_values(
        "currency", CURRENCIES, description="only currencies the rates API quotes"
    ),
    checks.not_null(
        "customer_name",
        "country",
        name="customer on file",
        description="the order's customer_id is in shop.customers (the join found a name)",
    ),
]

# The daily sales. No rows is not wrong as such (a quiet day, a high min_amount), but it is
# worth a look: a warning, and the run goes on.
DAILY_SALES = [
    checks.unique("sales_day", "country"),
    checks.row_count(min=1, severity="warn", description="the days loaded had sales"),
]
