"""``legato assets`` and ``legato assets show KEY``, as a user runs them after two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import cli, make_project

CODE = """
from datetime import timedelta

from legato import Asset, Context, pipeline, task
from legato.partitions import daily


@task(consumes="shop.orders_raw")
def extract(ctx: Context) -> list[dict]:
    return [{"order_id": i, "amount": 2.5 * i} for i in range(1234)]


@task(produces=Asset("shop.orders", description="orders of the day", owner="sales",
                     freshness=timedelta(days=1)))
def orders(ctx: Context, rows: list[dict]) -> list[dict]:
    ctx.add_metadata(source="drop/orders.csv")
    return rows


@pipeline(partitions=daily(start="2026-01-01"))
def ingest():
    orders(extract())
"""


def shown_missing(entry: dict[str, Any]) -> str:
    return str(entry["freshness"]["missing"][0])


def test_catalog_and_one_asset(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE)
    for day in ("2026-01-05", "2026-01-06"):
        r = cli("run", "ingest", "--partition", day, project=root)
        assert r.returncode == 0, r.stderr

    r = cli("assets", project=root)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == [
        "asset", "producer", "partitions", "last", "materialized", "rows", "freshness"
    ]
    made = lines[1].split()
    assert made[:3] == ["shop.orders", "ingest.orders", "daily"]
    # Made for two days of January: the newest day closed a day ago is missing.
    assert made[-3:] == ["(2026-01-06)", "1,234", "stale"]
    assert lines[2].split() == ["shop.orders_raw", "(outside)", "never"]

    r = cli("assets", "--json", project=root)
    assert r.returncode == 0, r.stderr
    (first, second) = json.loads(r.stdout)
    assert first["key"] == "shop.orders" and first["latest"]["metadata"]["rows"] == 1234
    assert second["key"] == "shop.orders_raw" and second["latest"] is None
    assert first["freshness"]["state"] == "stale" and len(first["freshness"]["missing"]) == 1
    assert second["freshness"]["state"] == "none"

    r = cli("assets", "--stale", project=root)
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["shop.orders"]

    r = cli("assets", "show", "shop.orders", project=root)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.splitlines()[0] == "shop.orders  orders of the day"
    assert "producers    ingest.orders" in out and "upstream     shop.orders_raw" in out
    assert "2 times, in 2 partitions" in out
    (said,) = [line for line in out.splitlines() if line.startswith("  freshness")]
    assert said.split()[1:4] == ["stale", "(partition", shown_missing(first)]
    assert "not materialized" in said and said.endswith("within 1d")
    assert "order_id:int, amount:float" in out
    assert "added by the task: source='drop/orders.csv'" in out

    r = cli("assets", "show", "shop.orders", "--json", project=root)
    shown = json.loads(r.stdout)
    assert [m["partition"] for m in shown["partitions"]] == ["2026-01-06", "2026-01-05"]
    assert shown["upstream"] == ["shop.orders_raw"] and shown["counts"]["materializations"] == 2

    r = cli("assets", "show", "no.such", project=root)
    assert r.returncode != 0 and "no asset 'no.such'" in r.stderr
