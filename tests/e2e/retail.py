"""What the retail example's end-to-end tests share: a copy of the example, the `legato`
command run on it, and the daily sales expected from its source files.

The expected sales are computed with plain Python (csv, sqlite3, zoneinfo), not with the
example's own functions; only the exchange rates come from the example, from the module its
rates API serves (``retail.rates``), as they would come from a rates provider's history.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retail_orders"
LEGATO = Path(sys.executable).parent / "legato"
UTC_DAYS = [f"2026-11-{d}" for d in range(13, 22)]
COUNTRIES = {"AT", "CA", "DE", "FR", "JP", "NL", "US"}


def copy_example(tmp_path: Path) -> Path:
    """A copy of the example under ``tmp_path``, without run state or caches."""
    if not LEGATO.exists():
        pytest.skip(f"no legato script at {LEGATO}")
    copy = tmp_path / "retail_orders"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(".legato", "__pycache__"))
    return copy


def rate_of(project: Path) -> Callable[[date, str], float]:
    """``eur_per_unit(day, currency)`` of the copy's rates module, at legato.toml's seed."""
    spec = importlib.util.spec_from_file_location("retail_rates", project / "retail" / "rates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rates: Callable[[date, str], float] = module.eur_per_unit
    return rates


def expected_daily_sales(project: Path) -> dict[tuple[str, str], tuple[int, float]]:
    """(UTC day, country) -> (orders, revenue in EUR at that day's rate), from the sources."""
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
    rate = rate_of(project)
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for customer, local, tz, amount, currency in orders.values():
        when = datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(tz))
        day = when.astimezone(UTC).date()
        key = (day.isoformat(), countries[customer])
        totals[key][0] += 1
        totals[key][1] += amount * rate(day, currency)
    return {key: (int(n), round(revenue, 2)) for key, (n, revenue) in totals.items()}


def legato(
    project: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``legato ARGS --project PROJECT`` with no LEGATO_* variable of the test's own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    environ["NO_COLOR"] = "1"
    environ.update(env or {})
    return subprocess.run(
        [str(LEGATO), *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=project.parent,
        input=stdin,
        timeout=240,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def latest_run(project: Path, *options: str, pipeline: str = "daily_sales") -> dict[str, object]:
    """The newest run of ``pipeline`` as `legato runs --json` shows it (``options``: --env)."""
    runs = json.loads(
        ok(legato(project, *options, "runs", "--json", "--pipeline", pipeline, "-n", "1"))
    )
    found: dict[str, object] = runs[0]
    return found


def warehouse_rows(
    project: Path, path: str = ".legato/warehouse.duckdb"
) -> dict[tuple[str, str], tuple[int, float, str]]:
    """(UTC day, country) -> (orders, revenue, loading run) of the warehouse at ``path``."""
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect(str(project / path), read_only=True)
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


def webhook_rows(project: Path, path: str = ".legato/webhook/daily_summary.jsonl") -> list[dict]:
    """Every row the example's webhook recorded, batch after batch."""
    lines = (project / path).read_text(encoding="utf-8").splitlines()
    return [row for line in lines for row in json.loads(line)["body"]["days"]]


def readme_command(fragment: str) -> str:
    """The one ``$ ...`` command of the example's README that contains ``fragment``."""
    lines = (EXAMPLE / "README.md").read_text(encoding="utf-8").splitlines()
    found = [line[2:] for line in lines if line.startswith("$ ") and fragment in line]
    assert len(found) == 1, f"README commands with {fragment!r}: {found}"
    return found[0]


def run_readme(project: Path, fragment: str) -> str:
    """Run the README's command containing ``fragment`` as written, on the copy ``project``
    (its ``examples/retail_orders`` paths pointed at the copy, ``python`` and ``legato``
    those of this virtual environment); its output, after checking it succeeded."""
    command = readme_command(fragment).replace("examples/retail_orders", str(project))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEGATO_")}
    environ["NO_COLOR"] = "1"
    environ["PATH"] = f"{LEGATO.parent}{os.pathsep}{environ.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=project.parent,
        timeout=240,
    )
    return ok(done)
