"""The example's pipelines, run by its own tests with Legato's pytest plugin.

``legato_project()`` copies this project (the one this file is in) under the test's
``tmp_path``, so the DuckDB warehouse and the webhook's record the pipelines write under the
project folder are the copy's; ``legato_run`` runs a pipeline of it in this process on a
store of its own and gives back what each task did. ``resources={...}`` hands a task
something else than legato.toml's resource of that name: another shop database, another
drop folder, a rates API serving other rates.

Run them from the repository root with ``pytest examples/retail_orders/tests``.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import fsspec
import httpx
import pytest
from sqlalchemy import create_engine

from legato import Asset
from legato.resources.rooted import RootedFileSystem
from legato.testing import build_context

EXAMPLE = Path(__file__).resolve().parents[1]


def example_module(name: str) -> ModuleType:
    """A module of the example's ``retail`` package, for what a test starts itself."""
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    return importlib.import_module(name)


@pytest.fixture
def rates_api() -> Iterator[Any]:
    """The example's own API server, serving the rates of another seed than legato.toml's."""
    server = example_module("retail.local_api").ApiServer(seed=7, received=None, token=None)
    server.start()
    yield server
    server.stop()


def received(project: Path) -> list[dict[str, Any]]:
    """What the webhook recorded, one entry per batch it took."""
    path = project / ".legato" / "webhook" / "daily_summary.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_day_of_sales_is_loaded_into_the_warehouse(legato_project, legato_run) -> None:
    project = legato_project()
    result = legato_run("daily_sales", project=project, partition="2026-11-20")

    result.raise_for_failure()
    summary = result.output_of("load_daily_sales")
    assert summary["days_loaded"] == ["2026-11-20"]
    assert summary["rows_written"] == len(result.output_of("aggregate_daily_sales"))
    # The shop database "is busy" on the first attempt: one retry, then its orders.
    shop = result.tasks["extract_shop_orders"]
    assert [a.outcome for a in shop.attempts] == ["failed", "succeeded"]
    assert "ConnectionError: shop database is busy" in (shop.attempts[0].traceback or "")
    assert "attempt 2: read" in shop.log
    # What the warehouse (the copy's, under tmp_path) holds now: that day only.
    with duckdb.connect(str(project / ".legato" / "warehouse.duckdb"), read_only=True) as db:
        days = db.sql("select distinct sales_day::varchar from daily_sales").fetchall()
    assert days == [("2026-11-20",)]
    # The summary went to the webhook (the project's own server), and no broker is declared.
    rows = [row for batch in received(project) for row in batch["body"]["days"]]
    assert {r["sales_day"] for r in rows} == {"2026-11-20"}
    assert len(rows) == summary["rows_written"]
    assert result.output_of("publish_daily_summary") == {"published": 0, "queue": None}


def test_the_dev_environment_loads_a_warehouse_of_its_own(legato_project, legato_run) -> None:
    project = legato_project()
    result = legato_run("daily_sales", project=project, partition="2026-11-20", env="dev")

    result.raise_for_failure()
    dev = project / ".legato" / "dev"
    assert result.output_of("load_daily_sales")["warehouse"] == str(dev / "warehouse.duckdb")
    with duckdb.connect(str(dev / "warehouse.duckdb"), read_only=True) as db:
        assert db.execute("select count(*) from daily_sales").fetchone() == (
            len(result.output_of("aggregate_daily_sales")),
        )
    assert (dev / "webhook" / "daily_summary.jsonl").exists()
    assert not (project / ".legato" / "warehouse.duckdb").exists()


def test_revenue_is_converted_at_the_rates_the_api_serves(
    legato_project, legato_run, rates_api: Any
) -> None:
    with httpx.Client(base_url=rates_api.url) as rates:
        result = legato_run(
            "daily_sales",
            project=legato_project(),
            partition="2026-11-18",
            resources={"rates": rates},
        )

    result.raise_for_failure()
    eur_per_unit = example_module("retail.rates").eur_per_unit
    orders = result.output_of("join_customers")
    expected = sum(
        amount * eur_per_unit(date(2026, 11, 18), currency, seed=7)
        for amount, currency in zip(orders["amount"], orders["currency"], strict=True)
    )
    daily = result.output_of("aggregate_daily_sales")
    assert float(daily["revenue_eur"].sum()) == pytest.approx(expected, abs=0.01 * len(daily))
    # Seed 7's rates are not legato.toml's: the rates given were the ones used.
    usd = result.output_of("fetch_rates").set_index("currency").loc["USD", "eur_per_unit"]
    assert usd == eur_per_unit(date(2026, 11, 18), "USD", seed=7)
    assert usd != eur_per_unit(date(2026, 11, 18), "USD")


def test_an_order_of_an_unknown_customer_stops_the_run(
    legato_project, legato_run, tmp_path: Path
) -> None:
    # Another shop database: a copy where one customer who ordered has been deleted.
    shop_file = tmp_path / "shop.db"
    shutil.copy(EXAMPLE / "data" / "shop.db", shop_file)
    with sqlite3.connect(shop_file) as con:
        (gone,) = con.execute("SELECT customer_id FROM orders ORDER BY order_id").fetchone()
        con.execute("DELETE FROM customers WHERE customer_id = ?", [gone])
    shop_db = create_engine(f"sqlite:///{shop_file}")

    result = legato_run("daily_sales", project=legato_project(), resources={"shop_db": shop_db})
    shop_db.dispose()

    # The shop orders' relationship check runs in that database and blocks the extract.
    assert [t.key for t in result.failed_tasks] == ["extract_shop_orders"]
    error = result.tasks["extract_shop_orders"].error or ""
    assert "check relationship(customer_id -> customers.customer_id) failed" in error
    assert f"'customer_id': '{gone}'" in error
    assert result.tasks["join_customers"].state == "upstream_failed"
    assert result.tasks["push_daily_summary"].state == "upstream_failed"


def test_a_run_materializes_every_asset_and_passes_its_checks(
    legato_project, legato_harness
) -> None:
    assets = example_module("retail.assets")
    harness = legato_harness(project=legato_project())
    daily = harness.run("daily_sales", partition="2026-11-20").raise_for_failure()
    reports = harness.run("store_reports").raise_for_failure()

    declared = {v.key for v in vars(assets).values() if isinstance(v, Asset)}
    assert {e.key for e in harness.door.assets.catalog()} == declared
    for key in declared:
        # store_reports also reads (and so materializes) the two order sources.
        made = {(m.run_id, m.partition) for m in harness.door.assets.materializations(key)}
        run = reports if key == "reports.store_reports" else daily
        assert (run.run_id, run.partition) in made, key
    cleaned = harness.door.assets.materializations("retail.cleaned_orders")[0]
    assert cleaned.metadata["rows"] == len(daily.output_of("join_customers"))
    loaded = harness.door.assets.materializations("warehouse.daily_sales")[0]
    assert loaded.metadata["values"]["days_loaded"] == ["2026-11-20"]
    # Every check declared on the tasks ran, and passed.
    results = harness.door.checks.results(run_id=daily.run_id)
    assert {r.result.outcome for r in results} == {"passed"}
    assert {(r.result.asset, r.result.check_name) for r in results} == {
        ("shop.orders", "relationship(customer_id -> customers.customer_id)"),
        ("retail.cleaned_orders", "not_null(order_id, customer_id, ordered_at_utc, amount)"),
        ("retail.cleaned_orders", "unique(order_id)"),
        ("retail.cleaned_orders", "amount >= 0"),
        ("retail.cleaned_orders", "accepted_values(currency)"),
        ("retail.cleaned_orders", "customer on file"),
        ("retail.daily_sales", "unique(sales_day, country)"),
        ("retail.daily_sales", "row_count"),
    }
    # The warehouse's table has a freshness policy: late six hours after its day closed.
    entry = next(e for e in harness.door.assets.catalog() if e.key == "warehouse.daily_sales")
    assert entry.freshness_seconds == 6 * 3600


def test_bad_data_blocks_the_run_at_the_cleaned_orders(legato_project, legato_harness) -> None:
    harness = legato_harness(project=legato_project())
    result = harness.run("daily_sales", partition="2026-11-20", params={"bad_data": True})

    assert not result.succeeded
    assert [t.key for t in result.failed_tasks] == ["join_customers"]
    error = result.tasks["join_customers"].error or ""
    assert error.startswith("check amount >= 0 failed (1 of ")
    assert "'order_id': 'SO-100042-R'" in error and "'amount': -24.99" in error
    # Nothing downstream read the orders: no sales counted, nothing loaded or sent.
    for task in ("fetch_rates", "aggregate_daily_sales", "load_daily_sales",
                 "push_daily_summary", "publish_daily_summary"):  # fmt: skip
        assert result.tasks[task].state == "upstream_failed", task
    assert harness.door.assets.materializations("retail.cleaned_orders") == []
    assert harness.door.assets.materializations("warehouse.daily_sales") == []
    [failed] = [
        r.result for r in harness.door.checks.results(run_id=result.run_id)
        if r.result.outcome != "passed"
    ]  # fmt: skip
    assert (failed.check_name, failed.severity, failed.failed_count) == ("amount >= 0", "block", 1)
    assert failed.sample[0]["order_id"] == "SO-100042-R"


def test_one_report_per_store(legato_project, legato_run) -> None:
    result = legato_run("store_reports", project=legato_project())

    reports = result.output_of("store_report")  # one element per store, in order
    assert [r["store_tz"] for r in reports] == ["America/New_York", "Asia/Tokyo", "Europe/Berlin"]
    assert [r["currency"] for r in reports] == ["USD", "JPY", "EUR"]
    table = result.output_of("collect_store_reports")
    assert table["orders"].tolist() == [r["orders"] for r in reports]


def test_an_order_without_a_valid_amount_stops_the_run(legato_project, legato_run) -> None:
    export = (EXAMPLE / "data" / "orders_export.csv").read_text()
    header, first, *rest = export.splitlines()
    fields = first.split(",")
    fields[4] = "-5.00"  # a negative amount gets past the export's cleaning
    broken = "\n".join([header, ",".join(fields), *rest]) + "\n"
    project = legato_project(files={"data/orders_export.csv": broken})

    result = legato_run("daily_sales", project=project, partition="2026-11-14")

    assert not result.succeeded
    assert [t.key for t in result.failed_tasks] == ["join_customers"]
    error = result.tasks["join_customers"].error or ""
    assert "check amount >= 0 failed (1 of " in error and "'amount': -5.0" in error
    assert result.tasks["load_daily_sales"].state == "upstream_failed"
    assert not (project / ".legato" / "warehouse.duckdb").exists()


def test_a_dropped_file_is_appended(legato_project, legato_run, tmp_path: Path) -> None:
    project = legato_project()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    export = (project / "data" / "orders_export.csv").read_text().splitlines()
    (inbox / "late_orders.csv").write_text("\n".join(export[:4]) + "\n")
    drop = RootedFileSystem(str(inbox), fsspec.filesystem("file"))

    result = legato_run(
        "import_orders_file",
        project=project,
        params={"path": "data/incoming/late_orders.csv"},
        resources={"drop": drop},
    )

    result.raise_for_failure()
    assert result.output_of("load_incoming")["rows"] == 3
    with duckdb.connect(str(project / ".legato" / "warehouse.duckdb"), read_only=True) as db:
        files = db.sql("select distinct source_file from incoming_orders").fetchall()
    assert files == [("late_orders.csv",)]


def test_a_repeated_push_is_recorded_once(tmp_path: Path) -> None:
    """The push carries the same idempotency keys on every attempt of a task run, so the
    webhook applies a retried push once."""
    pd = pytest.importorskip("pandas")
    activation = example_module("retail.activation")
    record = tmp_path / "received.jsonl"
    server = example_module("retail.local_api").ApiServer(seed=1, received=record, token=None)
    server.start()
    daily = pd.DataFrame(
        {
            "sales_day": [date(2026, 11, 20)] * 30,
            "country": [f"C{n:02d}" for n in range(30)],
            "orders": [1] * 30,
            "revenue_eur": [9.99] * 30,
        }
    )
    loaded = {"days_loaded": ["2026-11-20"]}
    try:
        with httpx.Client(base_url=server.url) as webhook:
            for attempt in (1, 2):
                ctx = build_context(activation.push_daily_summary, attempt=attempt)
                pushed = activation.push_daily_summary.fn(ctx, daily, loaded, webhook=webhook)
                assert pushed == {"rows": 30, "batches": 2}
    finally:
        server.stop()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 2  # two batches, each recorded once though sent twice
    assert sum(len(line["body"]["days"]) for line in lines) == 30


@pytest.mark.parametrize("bad", ["2026-11-13", "tomorrow"])
def test_a_partition_outside_the_pipelines_days_is_refused(legato_run, bad: str) -> None:
    with pytest.raises(Exception, match="partition"):
        legato_run("daily_sales", partition=bad)
