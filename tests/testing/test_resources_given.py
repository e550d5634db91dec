"""``run_pipeline(..., resources=...)`` and ``build_context(resources=...)``: objects a test
gives stand in for the configured resources, asked for by parameter name, by annotation or
through ``ctx.resources``; the same objects, never closed by Legato."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

import pytest

import legato
from legato import Context, pipeline, task
from legato.testing import build_context, run_pipeline


@task
def count_orders(shop_db: sqlite3.Connection) -> int:
    return int(shop_db.execute("SELECT count(*) FROM orders").fetchone()[0])


@task
def biggest(db: Annotated[sqlite3.Connection, legato.resource("shop_db")]) -> float:
    return float(db.execute("SELECT max(amount) FROM orders").fetchone()[0])


@task
def summary(ctx: Context, n: int, top: float) -> str:
    rate = ctx.resources.rates["EUR"]
    return f"{n} orders, top {top * rate:.2f} EUR"


@pipeline
def shop_summary():
    summary(count_orders(), biggest())


@pytest.fixture
def shop(tmp_path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(tmp_path / "shop.db", check_same_thread=False)
    con.executescript(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL);"
        "INSERT INTO orders (amount) VALUES (10.0), (25.5), (4.0);"
    )
    return con


def test_given_objects_reach_every_way_of_asking(tmp_path: Path, shop: sqlite3.Connection) -> None:
    result = run_pipeline(
        shop_summary,
        resources={"shop_db": shop, "rates": {"EUR": 2.0}},
        tmp_path=tmp_path / "run",
    )
    result.raise_for_failure()
    assert result.output_of("count_orders") == 3
    assert result.output_of("biggest") == 25.5
    assert result.output_of("summary") == "3 orders, top 51.00 EUR"
    # Given objects are the test's: still open after the run.
    assert shop.execute("SELECT 1").fetchone() == (1,)


def test_a_resource_not_given_fails_the_task_that_asks(tmp_path: Path) -> None:
    result = run_pipeline(shop_summary, resources={"rates": {}}, tmp_path=tmp_path / "run")
    assert not result.succeeded
    assert "shop_db" in (result.tasks["count_orders"].error or "")


def test_given_objects_are_not_handed_out_after_the_run(
    tmp_path: Path, shop: sqlite3.Connection
) -> None:
    run_pipeline(shop_summary, resources={"shop_db": shop, "rates": {"EUR": 1.0}},
                 tmp_path=tmp_path / "one")
    later = run_pipeline(shop_summary, resources={"rates": {"EUR": 1.0}},
                         tmp_path=tmp_path / "two")
    assert not later.succeeded


def test_plain_function_with_resources_in_a_built_context(shop: sqlite3.Connection) -> None:
    ctx = build_context(summary, resources={"rates": {"EUR": 0.5}})
    assert summary.fn(ctx, 2, 10.0) == "2 orders, top 5.00 EUR"
    assert count_orders.fn(shop) == 3
    assert ctx.resources["rates"] == {"EUR": 0.5}


def test_a_project_run_in_a_chosen_environment_uses_its_resources(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "legato.toml").write_text(
        '[project]\nmodules = ["flows"]\n\n'
        '[resources.src]\nkind = "sql"\nurl = "sqlite:///dev.db"\n\n'
        '[env.test.resources.src]\nurl = "sqlite:///test.db"\n'
    )
    (project / "flows.py").write_text(
        "from legato import pipeline, task\n\n"
        "@task\n"
        "def count(src) -> int:\n"
        "    with src.connect() as con:\n"
        "        return con.exec_driver_sql('SELECT count(*) FROM t').scalar_one()\n\n"
        "@pipeline\n"
        "def counting():\n"
        "    count()\n"
    )
    for name, rows in (("dev.db", 1), ("test.db", 2)):
        con = sqlite3.connect(project / name)
        con.execute("CREATE TABLE t (x INTEGER)")
        con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
        con.commit()
        con.close()

    dev = run_pipeline("counting", project=project, tmp_path=tmp_path / "dev")
    test = run_pipeline("counting", project=project, env="test", tmp_path=tmp_path / "test")
    assert dev.output_of("count") == 1
    assert test.output_of("count") == 2
