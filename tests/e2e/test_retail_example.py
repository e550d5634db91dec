"""The retail_orders example: its helpers on small frames, and a full run through the CLI.

The end-to-end test computes the expected daily sales from the source files with plain
Python (csv, sqlite3, zoneinfo), not with the example's own functions, and compares them
with what the pipeline loaded into DuckDB.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pd = pytest.importorskip("pandas")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retail_orders"
LEGATO = Path(sys.executable).parent / "legato"

# The book rates the example documents for its reporting currency (EUR per unit).
BOOK_RATES = {"EUR": 1.0, "USD": 0.93, "JPY": 0.0061}
UTC_DAYS = [f"2026-11-{d}" for d in range(13, 22)]
COUNTRIES = {"AT", "CA", "DE", "FR", "JP", "NL", "US"}


# -- the example's helpers, imported from its folder ---------------------------------------


@pytest.fixture(scope="module")
def retail() -> Any:
    """The example's modules, imported from its folder (and forgotten afterwards)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield SimpleNamespace(
            transform=importlib.import_module("retail.transform"),
            checks=importlib.import_module("retail.checks"),
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


def test_checks_list_every_broken_rule(retail: Any) -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["SO-1", "SO-1", "SO-3"],
            "amount": [10.0, 10.0, -5.0],
            "currency": ["EUR", "EUR", "EUR"],
            "ordered_at_utc": [utc("2026-11-14 10:00")] * 3,
            "customer_name": ["Lena Becker", "Lena Becker", None],
        }
    )
    problems = retail.checks.find_problems(orders)
    assert len(problems) == 3
    assert any("more than once: SO-1" in p for p in problems)
    assert any("negative amount: SO-3" in p for p in problems)
    assert any("not in the customers table: SO-3" in p for p in problems)
    with pytest.raises(retail.checks.DataCheckError, match="3 data check"):
        retail.checks.check_orders(orders)
    assert (
        retail.checks.find_problems(orders.iloc[[0, 2]].assign(amount=1.0, customer_name="x")) == []
    )


# -- the pipeline, run through the CLI ------------------------------------------------------


def expected_daily_sales(project: Path) -> dict[tuple[str, str], tuple[int, float]]:
    """(UTC day, country) -> (orders, revenue in EUR), straight from the source files."""
    orders: dict[str, tuple[str, str, str, float, str]] = {}
    con = sqlite3.connect(project / "data" / "shop.db")
    try:
        countries = dict(con.execute("SELECT customer_id, country FROM customers"))
        for order_id, customer, local, tz, amount, currency in con.execute(
            "SELECT order_id, customer_id, ordered_local, store_tz, total_amount, currency "
            "FROM orders"
        ):
            orders[order_id] = (customer, local, tz, float(amount), currency)
    finally:
        con.close()
    with (project / "data" / "orders_export.csv").open(newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row = {key: value.strip() for key, value in raw.items()}
            if not row["amount"]:
                continue  # unconfirmed payment: not a sale
            # setdefault: an order the shop DB has already keeps the shop DB's values.
            orders.setdefault(
                row["order_id"],
                (
                    row["customer_id"],
                    row["ordered_at"],
                    row["store_tz"],
                    float(row["amount"]),
                    row["currency"].upper(),
                ),
            )
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for customer, local, tz, amount, currency in orders.values():
        when = datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(tz))
        key = (when.astimezone(UTC).date().isoformat(), countries[customer])
        totals[key][0] += 1
        totals[key][1] += amount * BOOK_RATES[currency]
    return {key: (int(n), round(revenue, 2)) for key, (n, revenue) in totals.items()}


def legato(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [str(LEGATO), *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env=env,
        cwd=project.parent,
        timeout=240,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def latest_run(project: Path) -> str:
    runs = json.loads(ok(legato(project, "runs", "--json", "--pipeline", "daily_sales", "-n", "1")))
    return runs[0]["id"]


def warehouse_rows(project: Path) -> dict[tuple[str, str], tuple[int, float, str]]:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect(str(project / ".legato" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT strftime(sales_day, '%Y-%m-%d'), country, orders, revenue_eur, loaded_by_run "
            "FROM daily_sales"
        ).fetchall()
    finally:
        con.close()
    out = {(day, country): (n, float(revenue), run) for day, country, n, revenue, run in rows}
    assert len(out) == len(rows), "the table holds a (day, country) twice"
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not LEGATO.exists():
        pytest.skip(f"no legato script at {LEGATO}")
    copy = tmp_path / "retail_orders"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(".legato", "__pycache__"))
    return copy


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
    run_id = latest_run(project)

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
    assert len(tasks) == 9
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

    logs = ok(legato(project, "logs", run_id))
    assert "dropped 2 without an amount" in logs
    assert "summary:" in logs

    # Loading one day again replaces just that day's rows, with the same numbers.
    ok(legato(project, "run", "daily_sales", "--partition", "2026-11-20"))
    day_run = latest_run(project)
    assert day_run != run_id
    reloaded = warehouse_rows(project)
    assert {k: v[:2] for k, v in reloaded.items()} == {k: v[:2] for k, v in loaded.items()}
    assert {k: v[2] for k, v in reloaded.items()} == {
        k: day_run if k[0] == "2026-11-20" else run_id for k in loaded
    }


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
    failed_run = latest_run(project)
    tasks = {
        t["task_key"]: t
        for t in json.loads(ok(legato(project, "show", failed_run, "--json")))["tasks"]
    }
    assert tasks["load_daily_sales"]["state"] == "failed"
    assert "lock" in tasks["load_daily_sales"]["error"]

    ok(legato(project, "rerun", failed_run, "--from-failure"))
    rerun = latest_run(project)
    shown = json.loads(ok(legato(project, "show", rerun, "--json")))
    assert shown["run"]["state"] == "succeeded"
    assert shown["run"]["parent_run_id"] == failed_run
    ran = {t["task_key"] for t in shown["tasks"] if not t["reused_from"]}
    assert ran == {"load_daily_sales"}
    assert {v[2] for k, v in warehouse_rows(project).items() if k[0] == "2026-11-20"} == {rerun}


HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
con.close()
"""
