"""The example's pipelines, run by its own tests with Legato's pytest plugin.

``legato_project()`` copies this project (the one this file is in) under the test's
``tmp_path``, so the DuckDB warehouse the pipelines write under the project folder is the
copy's; ``legato_run`` runs a pipeline of it in this process on a store of its own and gives
back what each task did.

Run them from the repository root with ``pytest examples/retail_orders/tests``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


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


def test_one_report_per_store(legato_project, legato_run) -> None:
    result = legato_run("store_reports", project=legato_project())

    reports = result.output_of("store_report")  # one element per store, in order
    assert [r["store_tz"] for r in reports] == ["America/New_York", "Asia/Tokyo", "Europe/Berlin"]
    assert [r["currency"] for r in reports] == ["USD", "JPY", "EUR"]
    table = result.output_of("collect_store_reports")
    assert table["orders"].tolist() == [r["orders"] for r in reports]


def test_an_order_without_a_valid_amount_stops_the_run(legato_project, legato_run) -> None:
    export = (Path(__file__).parents[1] / "data" / "orders_export.csv").read_text()
    header, first, *rest = export.splitlines()
    fields = first.split(",")
    fields[4] = "-5.00"  # a negative amount gets past the export's cleaning
    broken = "\n".join([header, ",".join(fields), *rest]) + "\n"
    project = legato_project(files={"data/orders_export.csv": broken})

    result = legato_run("daily_sales", project=project, partition="2026-11-14")

    assert not result.succeeded
    assert [t.key for t in result.failed_tasks] == ["check_orders"]
    assert "negative amount" in (result.tasks["check_orders"].error or "")
    assert result.tasks["load_daily_sales"].state == "upstream_failed"
    assert not (project / ".legato" / "warehouse.duckdb").exists()


def test_a_dropped_file_is_appended(legato_project, legato_run, tmp_path: Path) -> None:
    project = legato_project()
    export = (project / "data" / "orders_export.csv").read_text().splitlines()
    dropped = tmp_path / "late_orders.csv"
    dropped.write_text("\n".join(export[:4]) + "\n")

    result = legato_run("import_orders_file", project=project, params={"path": str(dropped)})

    assert result.output_of("load_incoming") == {"file": str(dropped), "rows": 3}


@pytest.mark.parametrize("bad", ["2026-11-13", "tomorrow"])
def test_a_partition_outside_the_pipelines_days_is_refused(legato_run, bad: str) -> None:
    with pytest.raises(Exception, match="partition"):
        legato_run("daily_sales", partition=bad)
