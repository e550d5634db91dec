"""The retail_orders example: its helpers on small frames, and a full run through the CLI,
with the commands its README gives.

The end-to-end test computes the expected daily sales from the source files with plain
Python (tests/e2e/retail.py), not with the example's own functions, and compares them with
what the pipeline loaded into DuckDB and pushed to its webhook.
"""

from __future__ import annotations

import csv
import importlib
import json
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.e2e.retail import (
    COUNTRIES,
    EXAMPLE,
    UTC_DAYS,
    copy_example,
    expected_daily_sales,
    latest_run,
    legato,
    ok,
    run_readme,
    warehouse_rows,
    webhook_rows,
)

pd = pytest.importorskip("pandas")


# -- the example's helpers, imported from its folder ---------------------------------------


@pytest.fixture(scope="module")
def retail() -> Any:
    """The example's modules, imported from its folder (and forgotten afterwards)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield SimpleNamespace(
            transform=importlib.import_module("retail.transform"),
            checks=importlib.import_module("retail.checks"),
            rates=importlib.import_module("retail.rates"),
        )
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in [m for m in sys.modules if m == "retail" or m.startswith("retail.")]:
            del sys.modules[name]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_to_utc_converts_each_rows_own_time_zone(retail: Any) -> None:
    local = pd.Series(
        [
            "2026-11-14 00:30:00",  # Berlin, CET (+1): the previous UTC day
            "2026-11-20 21:15:00",  # New York, EST (-5): the next UTC day
            "2026-11-14 08:00:00",  # Tokyo, JST (+9): the previous UTC day
            "2026-11-14 12:00:00",  # Berlin again, mixed in with the others
        ]
    )
    zones = pd.Series(["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/Berlin"])
    out = retail.transform.to_utc(local, zones)
    assert list(out) == [
        utc("2026-11-13 23:30"),
        utc("2026-11-21 02:15"),
        utc("2026-11-13 23:00"),
        utc("2026-11-14 11:00"),
    ]
    assert str(out.dtype) == "datetime64[ns, UTC]"


def test_to_utc_around_daylight_saving_switches(retail: Any) -> None:
    local = pd.Series(
        [
            "2026-10-25 02:30:00",  # happens twice in Berlin: read as the first (CEST, +2)
            "2026-03-29 02:30:00",  # never happens in Berlin: moved forward to 03:00 CEST
            "2026-07-01 12:00:00",  # summer time in New York (-4)
        ]
    )
    zones = pd.Series(["Europe/Berlin", "Europe/Berlin", "America/New_York"])
    assert list(retail.transform.to_utc(local, zones)) == [
        utc("2026-10-25 00:30"),
        utc("2026-03-29 01:00"),
        utc("2026-07-01 16:00"),
    ]


def test_to_utc_names_an_unknown_time_zone(retail: Any) -> None:
    with pytest.raises(ValueError, match="Mars/Olympus_Mons"):
        retail.transform.to_utc(
            pd.Series(["2026-11-14 10:00:00"]), pd.Series(["Mars/Olympus_Mons"])
        )


def test_normalize_timestamps_adds_the_utc_sales_day(retail: Any) -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["A", "B"],
            "ordered_at": ["2026-11-20 23:30:00", "2026-11-21 08:59:59"],
            "store_tz": ["America/New_York", "Asia/Tokyo"],
        }
    )
    out = retail.transform.normalize_timestamps(orders)
    assert list(out["ordered_at_local"]) == ["2026-11-20 23:30:00", "2026-11-21 08:59:59"]
    assert [d.isoformat() for d in out["sales_day"]] == ["2026-11-21", "2026-11-20"]
    assert "ordered_at" not in out.columns


def order_rows(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "source": [r[1] for r in rows],
            "amount": [r[2] for r in rows],
        }
    )


def test_deduplicate_prefers_the_shop_database_and_counts_drops(retail: Any) -> None:
    orders = order_rows(
        ("SO-1", "web_export", 10.0),
        ("SO-2", "web_export", 20.0),
        ("SO-2", "web_export", 20.0),  # a repeated export line
        ("SO-3", "web_export", 30.0),  # also in the shop DB, where the amount differs
        ("SO-3", "shop_db", 31.0),
        ("SO-4", "shop_db", 40.0),
    )
    unique, dropped = retail.transform.deduplicate_orders(orders)
    assert dropped == 2
    assert sorted(unique["order_id"]) == ["SO-1", "SO-2", "SO-3", "SO-4"]
    so3 = unique[unique["order_id"] == "SO-3"].iloc[0]
    assert (so3["source"], so3["amount"]) == ("shop_db", 31.0)


def test_deduplicate_keeps_unique_orders_untouched(retail: Any) -> None:
    orders = order_rows(("SO-1", "web_export", 10.0), ("SO-2", "shop_db", 20.0))
    unique, dropped = retail.transform.deduplicate_orders(orders)
    assert dropped == 0
    assert unique.to_dict("records") == orders.to_dict("records")


def test_clean_export_strips_and_drops_rows_without_amount(retail: Any) -> None:
    raw = pd.DataFrame(
        {
            "order_id": ["SO-1", " SO-2", "SO-3"],
            "customer_id": [" C0001 ", "C0002", "C0003"],
            "ordered_at": ["2026-11-14 10:00:00"] * 3,
            "store_tz": ["Europe/Berlin ", "Asia/Tokyo", "Asia/Tokyo"],
            "amount": ["12.50", "", "3000"],
            "currency": ["eur", "JPY", " JPY"],
            "items": ["1", "2", "3"],
        }
    )
    orders, no_amount = retail.transform.clean_export(raw)
    assert no_amount == 1
    assert list(orders["order_id"]) == ["SO-1", "SO-3"]
    assert list(orders["customer_id"]) == ["C0001", "C0003"]
    assert list(orders["store_tz"]) == ["Europe/Berlin", "Asia/Tokyo"]
    assert list(orders["currency"]) == ["EUR", "JPY"]
    assert list(orders["amount"]) == [12.5, 3000.0]


def test_the_cleaned_orders_checks_find_each_broken_rule(retail: Any) -> None:
    from legato.quality import evaluate_all

    orders = pd.DataFrame(
        {
            "order_id": ["SO-1", "SO-1", "SO-3"],
            "customer_id": ["C0001", "C0001", "C0404"],
            "store_tz": ["Europe/Berlin"] * 3,
            "amount": [10.0, 10.0, -5.0],
            "currency": ["EUR", "EUR", "GBP"],
            "source": ["shop_db", "web_export", "web_export"],
            "ordered_at_utc": [utc("2026-11-14 10:00")] * 3,
            "customer_name": ["Lena Becker", "Lena Becker", None],
            "country": ["DE", "DE", None],
        }
    )
    now = utc("2026-11-21 00:00").to_pydatetime()
    found = {o.name: o for o in evaluate_all(retail.checks.CLEANED_ORDERS, orders, now=now)}
    assert {name for name, o in found.items() if not o.passed} == {
        "unique(order_id)", "amount >= 0", "accepted_values(currency)", "customer on file"
    }  # fmt: skip
    assert all(o.blocks for o in found.values() if not o.passed)
    assert [r["order_id"] for r in found["unique(order_id)"].sample] == ["SO-1", "SO-1"]
    assert found["amount >= 0"].sample == (
        {"order_id": "SO-3", "customer_id": "C0404", "store_tz": "Europe/Berlin",
         "amount": -5.0, "currency": "GBP", "source": "web_export"},
    )  # fmt: skip
    assert [r["order_id"] for r in found["customer on file"].sample] == ["SO-3"]
    fixed = orders.iloc[[0, 2]].assign(amount=1.0, currency="EUR", customer_name="x", country="DE")
    assert all(o.passed for o in evaluate_all(retail.checks.CLEANED_ORDERS, fixed, now=now))


def test_rates_are_seeded_and_move_a_little_around_the_reference(retail: Any) -> None:
    rates = retail.rates
    day = date(2026, 11, 20)
    assert rates.eur_per_unit(day, "USD") == rates.eur_per_unit(day, "USD")
    assert rates.eur_per_unit(day, "USD") != rates.eur_per_unit(date(2026, 11, 21), "USD")
    assert rates.eur_per_unit(day, "USD") != rates.eur_per_unit(day, "USD", seed=1)
    assert rates.eur_per_unit(day, "EUR") == 1.0
    assert abs(rates.eur_per_unit(day, "JPY") / 0.0061 - 1) <= 0.02
    served = rates.rates_between(day, date(2026, 11, 21))
    assert [(r["day"], r["currency"]) for r in served] == [
        (d, c) for d in ("2026-11-20", "2026-11-21") for c in ("EUR", "JPY", "USD")
    ]


def test_revenue_is_converted_at_each_days_rate(retail: Any) -> None:
    t = retail.transform
    orders = pd.DataFrame(
        {
            "order_id": ["A", "B", "C"],
            "sales_day": [date(2026, 11, 20), date(2026, 11, 20), date(2026, 11, 21)],
            "country": ["US", "US", "US"],
            "amount": [100.0, 50.0, 100.0],
            "currency": ["USD", "USD", "USD"],
        }
    )
    rates = t.rates_frame(
        [
            {"day": "2026-11-20", "currency": "USD", "eur_per_unit": 0.9},
            {"day": "2026-11-21", "currency": "USD", "eur_per_unit": 0.95},
        ]
    )
    daily = t.aggregate_daily_sales(orders, rates)
    assert daily["revenue_eur"].tolist() == [135.0, 95.0]
    assert daily["orders"].tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"no exchange rate .* C \(USD on 2026-11-21\)"):
        t.aggregate_daily_sales(orders, rates.iloc[:1])


# -- the pipeline, run through the CLI ------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path)


def test_source_data_has_the_messy_cases_the_pipeline_handles(project: Path) -> None:
    with (project / "data" / "orders_export.csv").open(newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))[1:]
    ids = [line[0].strip() for line in lines]
    con = sqlite3.connect(project / "data" / "shop.db")
    try:
        shop_ids = {row[0] for row in con.execute("SELECT order_id FROM orders")}
    finally:
        con.close()
    assert len(ids) > len(set(ids)), "the export should repeat some lines"
    assert set(ids) & shop_ids, "some orders should be in both sources"
    assert sum(1 for line in lines if not line[4].strip()) == 2
    assert any(field != field.strip() for line in lines for field in line)
    size = sum(p.stat().st_size for p in (project / "data").iterdir())
    assert size < 200_000


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_daily_sales_runs_end_to_end(project: Path) -> None:
    expected = expected_daily_sales(project)

    out = ok(legato(project, "run", "daily_sales"))
    assert "daily_sales" in out
    run_id = latest_run(project)["id"]

    loaded = warehouse_rows(project)
    assert sorted({day for day, _ in loaded}) == UTC_DAYS
    assert {country for _, country in loaded} == COUNTRIES
    assert set(loaded) == set(expected)
    for key, (orders, revenue) in expected.items():
        got_orders, got_revenue, loaded_by = loaded[key]
        assert got_orders == orders, key
        assert got_revenue == pytest.approx(revenue, abs=0.011), key
        assert loaded_by == run_id
    assert sum(n for n, _ in expected.values()) == 285  # 287 orders, 2 without an amount

    # The shop extract failed once (on purpose) and succeeded on its retry.
    shown = json.loads(ok(legato(project, "show", run_id, "--json")))
    assert shown["run"]["state"] == "succeeded"
    tasks = {t["task_key"]: t for t in shown["tasks"]}
    assert len(tasks) == 11
    assert all(t["state"] == "succeeded" for t in tasks.values())
    assert tasks["extract_shop_orders"]["attempt"] == 2
    assert {k: t["attempt"] for k, t in tasks.items() if k != "extract_shop_orders"} == {
        k: 1 for k in tasks if k != "extract_shop_orders"
    }
    shop = sorted(
        (a for a in shown["attempts"] if a["task_key"] == "extract_shop_orders"),
        key=lambda a: a["number"],
    )
    assert [a["outcome"] for a in shop] == ["failed", "succeeded"]
    assert "shop database is busy" in shop[0]["error"]

    # Every declared check ran on the run's data and passed.
    checked = json.loads(ok(legato(project, "checks", "--run", run_id, "--json")))
    assert len(checked) == 8 and {c["outcome"] for c in checked} == {"passed"}

    logs = ok(legato(project, "logs", run_id))
    assert "dropped 2 without an amount" in logs
    assert "read 27 rates for 2026-11-13 to 2026-11-21 in 3 pages" in logs
    assert "summary:" in logs

    # The activation step: the example's webhook got each loaded row once.
    pushed = {(r["sales_day"], r["country"]): r for r in webhook_rows(project)}
    assert len(pushed) == len(webhook_rows(project)) == len(loaded)
    assert {k: (r["orders"], r["revenue_eur"]) for k, r in pushed.items()} == {
        k: v[:2] for k, v in loaded.items()
    }
    assert "no 'broker' resource in this environment: nothing published" in logs
    # The README's look at the webhook's record: each batch's first row.
    first_rows = run_readme(project, "daily_summary.jsonl").splitlines()
    assert len(first_rows) == 2 and all(f"'run_id': '{run_id}'" in r for r in first_rows)

    # Loading one day again replaces just that day's rows, with the same numbers.
    ok(legato(project, "run", "daily_sales", "--partition", "2026-11-20"))
    day_run = latest_run(project)["id"]
    assert day_run != run_id
    reloaded = warehouse_rows(project)
    assert {k: v[:2] for k, v in reloaded.items()} == {k: v[:2] for k, v in loaded.items()}
    assert {k: v[2] for k, v in reloaded.items()} == {
        k: day_run if k[0] == "2026-11-20" else run_id for k in loaded
    }


def test_legato_assets_lists_the_examples_assets(project: Path) -> None:
    listed = {a["key"]: a for a in json.loads(ok(legato(project, "assets", "--json")))}
    assert {key: a["producers"] for key, a in listed.items()} == {
        "webshop.orders_export": [
            "daily_sales.extract_csv_orders", "store_reports.extract_csv_orders"
        ],
        "shop.orders": ["daily_sales.extract_shop_orders", "store_reports.extract_shop_orders"],
        "shop.customers": ["daily_sales.extract_customers"],
        "retail.cleaned_orders": ["daily_sales.join_customers"],
        "retail.daily_sales": ["daily_sales.aggregate_daily_sales"],
        "warehouse.daily_sales": ["daily_sales.load_daily_sales"],
        "reports.store_reports": ["store_reports.collect_store_reports"],
    }  # fmt: skip
    assert all(a["description"] and a["owner"] for a in listed.values())
    assert listed["warehouse.daily_sales"]["freshness_seconds"] == 6 * 3600
    table = ok(legato(project, "assets"))
    assert all(key in table for key in listed)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_store_reports_fans_out_one_task_per_store(project: Path) -> None:
    ok(legato(project, "run", "store_reports"))
    runs = json.loads(ok(legato(project, "runs", "--json", "--pipeline", "store_reports")))
    shown = json.loads(ok(legato(project, "show", runs[0]["id"], "--json")))
    assert shown["run"]["state"] == "succeeded"
    keys = {t["task_key"] for t in shown["tasks"] if t["state"] == "succeeded"}
    assert {"store_report[0]", "store_report[1]", "store_report[2]"} <= keys
    logs = ok(legato(project, "logs", runs[0]["id"], "collect_store_reports"))
    for store in ("America/New_York", "Asia/Tokyo", "Europe/Berlin"):
        assert store in logs


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rerun_from_failure_only_reloads(project: Path) -> None:
    """The README's demo: a locked warehouse fails the load; a rerun redoes only the load."""
    ok(legato(project, "run", "daily_sales", "-q"))
    warehouse = project / ".legato" / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        failed = legato(project, "run", "daily_sales", "--partition", "2026-11-20")
    finally:
        holder.communicate("", timeout=60)  # closing stdin ends the holder, freeing the lock
    assert failed.returncode == 1, failed.stdout + failed.stderr
    failed_run = latest_run(project)["id"]
    tasks = {
        t["task_key"]: t
        for t in json.loads(ok(legato(project, "show", failed_run, "--json")))["tasks"]
    }
    assert tasks["load_daily_sales"]["state"] == "failed"
    assert "lock" in tasks["load_daily_sales"]["error"]

    ok(legato(project, "rerun", failed_run, "--from-failure"))
    rerun = latest_run(project)["id"]
    shown = json.loads(ok(legato(project, "show", rerun, "--json")))
    assert shown["run"]["state"] == "succeeded"
    assert shown["run"]["parent_run_id"] == failed_run
    ran = {t["task_key"] for t in shown["tasks"] if not t["reused_from"]}
    assert ran == {"load_daily_sales", "push_daily_summary", "publish_daily_summary"}
    assert {v[2] for k, v in warehouse_rows(project).items() if k[0] == "2026-11-20"} == {rerun}


HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
con.close()
"""
