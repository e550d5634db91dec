"""``legato materialize KEY``, as a user runs it: the run is driven here with its progress,
says what it reuses, exits 1 when it fails; ``--queue`` only queues it; errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project

CODE = """
import os

from legato import pipeline, task
from legato.partitions import daily


@task(consumes="shop.orders")
def extract(ctx) -> list[dict]:
    return [{"order_id": 1, "amount": 10.0, "day": ctx.partition}]


@task(produces="warehouse.orders")
def clean(rows: list[dict]) -> list[dict]:
    return rows


@task(produces="warehouse.daily_sales")
def daily_sales(rows: list[dict]) -> list[dict]:
    if os.environ.get("BREAK_SALES"):
        raise ValueError("no sales today")
    return [{"total": sum(r["amount"] for r in rows)}]


@task(produces="reports.stores")
def store_report(rows: list[dict]) -> int:
    return len(rows)


@pipeline(partitions=daily(start="2026-03-01"))
def sales():
    rows = clean(extract())
    daily_sales(rows)
    store_report(rows)
"""


def test_materialize_here_then_reuse_then_fail(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE)
    r = cli("materialize", "warehouse.daily_sales", "--partition", "2026-03-05", project=root)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0].split()[1]
    assert "materialize warehouse.daily_sales: runs extract, clean, daily_sales" in r.stdout
    assert "✓ daily_sales succeeded" in r.stdout
    assert "store_report succeeded" not in r.stdout
    assert r.stdout.rstrip().endswith("(1 skipped, 3 succeeded)")

    r = cli("materialize", "reports.stores", "--partition", "2026-03-05", "--json", project=root)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["run"]["origin"] == "materialize:reports.stores"
    tasks = {t["task_key"]: (t["state"], t["reused_from"]) for t in shown["tasks"]}
    assert tasks == {
        "extract": ("succeeded", first),
        "clean": ("succeeded", first),
        "daily_sales": ("skipped", None),
        "store_report": ("succeeded", None),
    }

    r = cli(
        "materialize", "warehouse.daily_sales", "--partition", "2026-03-05",
        project=root, env={"BREAK_SALES": "1"},
    )  # fmt: skip
    assert r.returncode == 1
    assert f"reuses extract, clean from run {first}" in r.stdout
    assert "✗ daily_sales" in r.stdout and "no sales today" in r.stdout


def test_queue_and_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE)
    r = cli(
        "materialize", "warehouse.daily_sales", "--partition", "2026-03-05", "--queue",
        "--json", project=root,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert (run["state"], run["origin"]) == ("queued", "materialize:warehouse.daily_sales")
    r = cli("show", run["id"], "--json", project=root)
    states = {t["task_key"]: t["state"] for t in json.loads(r.stdout)["tasks"]}
    assert states == {
        "extract": "pending", "clean": "pending", "daily_sales": "pending",
        "store_report": "skipped",
    }  # fmt: skip

    r = cli("materialize", "warehouse.daily_sales", project=root)
    assert r.returncode == 2
    assert "is partitioned (daily" in r.stderr and "say which partition" in r.stderr
    r = cli("materialize", "shop.orders", project=root)
    assert r.returncode == 2
    assert "has no producer in the project" in r.stderr and "sales.extract" in r.stderr
    r = cli("materialize", "nothing.here", project=root)
    assert r.returncode == 2 and "no asset 'nothing.here'" in r.stderr
