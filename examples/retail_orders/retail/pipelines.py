"""The pipelines of the retail example.

``daily_sales``
    Web-shop CSV export + shop database -> UTC times -> one row per order -> customers
    joined (the cleaned orders, checked) -> revenue in EUR at each day's rate from the rates
    API -> orders and revenue per UTC day and country in the DuckDB warehouse -> the summary
    pushed to a webhook and, where a broker is declared, published to RabbitMQ. Give a
    partition (a UTC day such as 2026-11-20) to load just that day; ``bad_data=true`` slips a
    refund with a negative amount into the export, so that a check blocks the run.

    Partitioned by UTC day from 2026-11-14; scheduled at 02:30 UTC for the day that just
    closed; a webhook (``refresh``) starts it on demand.

``store_reports``
    One summary per store, one task per store (``.map()``), collected into one table.
    Runs after each success of ``daily_sales``.

``import_orders_file``
    One run per CSV file dropped into ``data/incoming/``: checks it and appends its orders to
    the warehouse's ``incoming_orders`` table.

What the tasks read and write are resources of legato.toml, asked for by parameter name:
``exports`` and ``drop`` (folders, ``files``), ``shop_db`` (``sql``), ``rates`` (the rates
API, ``retail.local_api``) and ``warehouse_db`` (``duckdb``). Each environment says where
they are; the code is the same in all. ``warehouse_db`` names the ``warehouse`` pool, so
the tasks that load the warehouse take its one slot and never write to the file at once.

What the tasks produce are the assets of ``assets`` (``@task(produces=...)``), checked by
the data-quality checks of ``checks`` (``@task(checks=...)``): Legato records each
materialization, evaluates the checks on the output as soon as it is stored, and stops the
run before a failing blocking check's data is read downstream.

The tasks are thin: they call the plain functions in ``sources``, ``transform`` and
``warehouse``, and log what they did. The activation tasks (webhook and RabbitMQ) are in
``activation``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.exc import OperationalError

from legato import Context, FailNow, pipeline, task, unmapped
from legato.partitions import daily
from legato.resources.duckdb import DuckDBWarehouse
from legato.resources.rooted import RootedFileSystem
from legato.triggers import on_file, on_success, webhook
from retail import assets, checks, sources, transform, warehouse
from retail.activation import publish_daily_summary, push_daily_summary
from retail.settings import EXPORT_FILE, LAST_LOCAL_DAY, RATES_PER_PAGE

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine


def partition_day(ctx: Context) -> date | None:
    """The UTC day this run is limited to, or None when it runs without a partition."""
    if ctx.partition is None:
        return None
    try:
        return date.fromisoformat(ctx.partition)
    except ValueError:
        # Retrying cannot fix a bad partition key: fail at once.
        raise FailNow(f"partition {ctx.partition!r} is not a day like 2026-11-20") from None


# -- extract ---------------------------------------------------------------------------


@task(tags=["extract"], timeout="2m", produces=assets.WEB_ORDERS)
def extract_csv_orders(
    ctx: Context, exports: RootedFileSystem, bad_data: bool = False
) -> pd.DataFrame:
    """Read the web shop's CSV export, tidy it and drop the rows that have no amount.

    With ``bad_data``, a refund line with a negative amount is added, as if the export had
    written it as an order: the cleaned orders' ``amount >= 0`` check then blocks the run.
    """
    with exports.open(EXPORT_FILE, "rb") as file:
        raw = sources.read_orders_export(file)
    orders, no_amount = transform.clean_export(raw)
    ctx.log.info(
        "read %d lines from %s, dropped %d without an amount: %d orders",
        len(raw),
        exports.url_of(EXPORT_FILE),
        no_amount,
        len(orders),
    )
    if bad_data:
        # Not real data: the switch that shows a blocked run (README, "A check that fails").
        refund = sources.refund_line(partition_day(ctx) or LAST_LOCAL_DAY)
        ctx.log.warning("bad_data: added a refund line with a negative amount: %s", refund)
        orders = pd.concat([orders, pd.DataFrame([refund])], ignore_index=True)
    return orders


@task(
    retries=2,
    retry_delay="1s",
    # Only errors that a second try can fix; a bug (KeyError, ...) fails at once.
    retry_on=(ConnectionError, TimeoutError, OperationalError),
    tags=["extract"],
    timeout="2m",
    produces=assets.SHOP_ORDERS,
    checks=checks.SHOP_ORDERS,
)
def extract_shop_orders(ctx: Context, shop_db: Engine) -> pd.DataFrame:
    """Read the orders of the shop's database; retried, as the shop DB can be busy."""
    if ctx.attempt == 1:
        # Not a real failure: the example fails its first attempt on purpose, so that each
        # run shows a retry (see `legato show RUN` and `legato logs RUN extract_shop_orders`).
        raise ConnectionError(
            "shop database is busy (simulated on the first attempt to show a retry)"
        )
    orders = sources.read_shop_orders(shop_db)
    ctx.log.info(
        "attempt %d: read %d orders from %s", ctx.attempt, len(orders), shop_db.url.database
    )
    return orders


@task(tags=["extract"], timeout="2m", produces=assets.CUSTOMERS)
def extract_customers(ctx: Context, shop_db: Engine) -> pd.DataFrame:
    """Read customer names and countries from the shop database."""
    customers = sources.read_customers(shop_db)
    ctx.log.info("read %d customers from %s", len(customers), shop_db.url.database)
    return customers


@task(tags=["extract"], retries=2, retry_delay="1s", timeout="2m")
def fetch_rates(ctx: Context, orders: pd.DataFrame, rates: httpx.Client) -> pd.DataFrame:
    """Read from the rates API the euro rate of each currency on each of the orders' days."""
    from legato.connectors import http

    days = sorted(orders["sales_day"].unique())
    if not days:
        return transform.rates_frame([])
    records: list[dict[str, Any]] = []
    pages = 0
    for page in http.iter_pages(
        rates,
        "/rates",
        params={"start": days[0].isoformat(), "end": days[-1].isoformat()},
        paginate=http.PageNumber(size=RATES_PER_PAGE),
        records="rates",
    ):
        records.extend(page.records)
        pages += 1
    table = transform.rates_frame(records)
    ctx.log.info(
        "read %d rates for %s to %s in %d pages from %s",
        len(table),
        days[0],
        days[-1],
        pages,
        rates.base_url,
    )
    return table


# -- transform -------------------------------------------------------------------------


@task
def normalize_timestamps(
    ctx: Context, csv_orders: pd.DataFrame, shop_orders: pd.DataFrame
) -> pd.DataFrame:
    """Put both sources together with UTC order times; with a partition, keep that UTC day."""
    orders = transform.normalize_timestamps(pd.concat([csv_orders, shop_orders], ignore_index=True))
    day = partition_day(ctx)
    if day is not None:
        orders = transform.filter_day(orders, day)
        ctx.log.info("partition %s: %d order rows on that UTC day", day, len(orders))
    else:
        ctx.log.info(
            "no partition: %d order rows on %d UTC days",
            len(orders),
            orders["sales_day"].nunique(),
        )
    return orders


@task
def deduplicate_orders(ctx: Context, orders: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per order_id (the shop database's row when both sources have it)."""
    unique, dropped = transform.deduplicate_orders(orders)
    ctx.log.info("dropped %d repeated rows: %d unique orders", dropped, len(unique))
    return unique


@task(produces=assets.CLEANED_ORDERS, checks=checks.CLEANED_ORDERS)
def join_customers(ctx: Context, orders: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Add each order's customer name and country: the cleaned orders, which the checks of
    ``retail.checks`` must pass before any sales are counted from them."""
    joined = transform.join_customers(orders, customers)
    ctx.log.info(
        "joined customers: %d orders from %d countries",
        len(joined),
        joined["country"].nunique(),
    )
    return joined


@task(produces=assets.DAILY_SALES, checks=checks.DAILY_SALES)
def aggregate_daily_sales(
    ctx: Context, orders: pd.DataFrame, rates: pd.DataFrame, min_amount: float
) -> pd.DataFrame:
    """Orders and revenue in EUR per UTC day and country, counting orders >= min_amount."""
    daily = transform.aggregate_daily_sales(orders, rates, min_amount)
    ctx.log.info(
        "%d rows of daily sales (orders of at least %s): %d orders, %.2f EUR",
        len(daily),
        min_amount,
        daily["orders"].sum(),
        daily["revenue_eur"].sum(),
    )
    return daily


# -- load ------------------------------------------------------------------------------


@task(tags=["load"], produces=assets.WAREHOUSE_DAILY_SALES)
def load_daily_sales(
    ctx: Context, daily: pd.DataFrame, warehouse_db: DuckDBWarehouse
) -> dict[str, Any]:
    """Replace the loaded days' rows in the warehouse; return a summary of the run.

    The ``warehouse_db`` resource names the ``warehouse`` pool: this task holds its one slot
    while it runs, so no other load waits on the file's lock in a worker slot meanwhile.
    """
    day = partition_day(ctx)
    # With a partition, its day is replaced even when it has no sales; else every day seen.
    days = [day] if day else sorted(pd.to_datetime(daily["sales_day"]).dt.date.unique())
    written = warehouse.replace_days(warehouse_db, daily, days, ctx.run_id)
    summary = {
        "partition": ctx.partition,
        "days_loaded": [d.isoformat() for d in days],
        "rows_written": written,
        "orders": int(daily["orders"].sum()),
        "revenue_eur": round(float(daily["revenue_eur"].sum()), 2),
        "warehouse": warehouse_db.path,
        "table_now": warehouse.table_stats(warehouse_db),
    }
    ctx.log.info("summary: %s", summary)
    ctx.add_metadata(
        days_loaded=summary["days_loaded"],
        rows_written=written,
        table_rows=summary["table_now"]["rows"],
    )
    return summary


@pipeline(
    tags=["retail"],
    partitions=daily(start="2026-11-14", tz="UTC"),
    schedule="30 2 * * *",
    triggers=[webhook("refresh")],
    max_active_runs=2,
)
def daily_sales(min_amount: float = 0.0, bad_data: bool = False):
    """Load orders and revenue per UTC day and country into the DuckDB warehouse.

    Partition: a UTC day such as 2026-11-20 loads only that day; none loads every day.
    ``bad_data``: add a refund with a negative amount to the export, which a check blocks.
    """
    csv_orders = extract_csv_orders(bad_data=bad_data)
    shop_orders = extract_shop_orders()
    customers = extract_customers()
    orders = normalize_timestamps(csv_orders, shop_orders)
    orders = deduplicate_orders(orders)
    orders = join_customers(orders, customers)
    rates = fetch_rates(orders)
    daily = aggregate_daily_sales(orders, rates, min_amount)
    loaded = load_daily_sales(daily)
    push_daily_summary(daily, loaded)
    publish_daily_summary(daily, loaded)


# -- store reports: one task per store -------------------------------------------------


@task(in_process=True)
def list_stores(orders: pd.DataFrame) -> list[str]:
    """The stores (by time zone) that have orders."""
    return sorted(orders["store_tz"].unique())


@task
def store_report(ctx: Context, store_tz: str, orders: pd.DataFrame) -> dict[str, Any]:
    """One store's orders, revenue in its own currency, and its busiest local hour."""
    mine = orders[orders["store_tz"] == store_tz]
    local_hour = mine["ordered_at_utc"].dt.tz_convert(ZoneInfo(store_tz)).dt.hour
    report = {
        "store_tz": store_tz,
        "currency": "/".join(sorted(mine["currency"].unique())),
        "orders": len(mine),
        "revenue": round(float(mine["amount"].sum()), 2),
        "average_order": round(float(mine["amount"].mean()), 2),
        "busiest_local_hour": int(local_hour.mode().iloc[0]),
    }
    ctx.log.info("store %s: %s", store_tz, report)
    return report


@task(produces=assets.STORE_REPORTS)
def collect_store_reports(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """All store reports in one table, printed to the log."""
    table = pd.DataFrame(reports).sort_values("store_tz").reset_index(drop=True)
    print(table.to_string(index=False))
    return table


@pipeline(tags=["retail"], triggers=[on_success("daily_sales")])
def store_reports():
    """Per-store summaries of the orders, one task per store, collected into one table."""
    orders = deduplicate_orders(normalize_timestamps(extract_csv_orders(), extract_shop_orders()))
    stores = list_stores(orders)
    reports = store_report.map(stores, unmapped(orders))
    collect_store_reports(reports)


# -- files dropped into data/incoming: one run per file ---------------------------------


@task(tags=["extract"])
def read_incoming(ctx: Context, path: str, drop: RootedFileSystem) -> pd.DataFrame:
    """Read one file of the drop folder (same layout as the nightly export); ``path`` is
    where the trigger saw it, and the file is read by its name from the ``drop`` resource."""
    name = Path(path).name
    with drop.open(name, "rb") as file:
        orders = sources.read_orders_export(file)
    ctx.log.info("read %d order rows from %s", len(orders), drop.url_of(name))
    return orders


@task(tags=["load"])
def load_incoming(
    ctx: Context, orders: pd.DataFrame, path: str, warehouse_db: DuckDBWarehouse
) -> dict[str, Any]:
    """Append the file's orders, as they are, to the warehouse's incoming_orders table."""
    written = warehouse.append_incoming(warehouse_db, orders, Path(path).name, ctx.run_id)
    ctx.log.info("appended %d rows from %s", written, Path(path).name)
    return {"file": path, "rows": written}


@pipeline(tags=["retail"], triggers=[on_file("data/incoming/*.csv", param="path", every="2s")])
def import_orders_file(path: str):
    """Check a dropped order file and append it to the warehouse."""
    load_incoming(read_incoming(path), path)
