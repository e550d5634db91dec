"""The retail example's environments and resources, through the CLI as its README uses them:
`legato resources check`, `legato --env prod config`, a dev run kept apart from the default
one, and a prod run on the machine's PostgreSQL (store and shop database) that publishes its
summary to RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.retail import (
    copy_example,
    expected_daily_sales,
    latest_run,
    legato,
    ok,
    run_readme,
    warehouse_rows,
    webhook_rows,
)

DAY = "2026-11-20"
RESOURCES = ("drop", "exports", "rates", "shop_db", "warehouse_db", "webhook")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path)


def expected_on(project: Path, day: str) -> dict[tuple[str, str], tuple[int, float]]:
    return {k: v for k, v in expected_daily_sales(project).items() if k[0] == day}


def test_every_resource_answers_its_check(project: Path) -> None:
    out = run_readme(project, "legato resources check")
    lines = {line.split()[1]: line for line in out.splitlines() if line.strip()}
    assert sorted(lines) == sorted(RESOURCES), out
    assert all(line.startswith("ok ") for line in lines.values()), out
    assert "SELECT 1 answered by SQLite" in lines["shop_db"]
    assert "GET /health answered 200" in lines["rates"]

    listed = {r["name"]: r for r in json.loads(ok(legato(project, "resources", "--json")))}
    assert listed["warehouse_db"]["pool"] == "warehouse"
    assert listed["warehouse_db"]["tasks"] == [
        "daily_sales.load_daily_sales",
        "import_orders_file.load_incoming",
    ]
    assert listed["rates"]["tasks"] == ["daily_sales.fetch_rates"]


def test_prod_config_masks_the_brokers_password(project: Path) -> None:
    shown = run_readme(project, "--env prod config")
    assert "environment 'prod' (defined: default, dev, prod)" in shown
    assert 'url = "amqp://guest:****@127.0.0.1:5672/"' in shown
    assert "guest:guest" not in shown
    # A secret's reference is shown as written: its value is never read to show settings.
    assert 'token = "${secret:retail_api_token}"' in shown
    assert "search_path%3Dretail_legato" in shown

    as_json = json.loads(ok(legato(project, "--env", "prod", "config", "--json")))
    assert "guest:guest" not in json.dumps(as_json)
    # Without --env: the embedded setup, with no broker.
    assert "[resources.broker]" not in ok(legato(project, "config"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dev_runs_on_a_store_and_warehouse_of_its_own(project: Path) -> None:
    run_readme(project, f"--env dev run daily_sales --partition {DAY}")

    run = latest_run(project, "--env", "dev")
    assert (run["state"], run["environment"]) == ("succeeded", "dev")
    loaded = warehouse_rows(project, ".legato/dev/warehouse.duckdb")
    assert {k: (n, pytest.approx(r, abs=0.011)) for k, (n, r, _) in loaded.items()} == (
        expected_on(project, DAY)
    )
    assert {
        r["sales_day"] for r in webhook_rows(project, ".legato/dev/webhook/daily_summary.jsonl")
    } == {DAY}
    # The default environment's store and warehouse saw nothing of it.
    assert json.loads(ok(legato(project, "runs", "--json"))) == []
    assert not (project / ".legato" / "warehouse.duckdb").exists()


# -- prod: PostgreSQL and RabbitMQ ----------------------------------------------------------


@pytest.fixture
def prod_project(project: Path, store_url_for: Any, amqp_url: str) -> Iterator[tuple[Path, str]]:
    """The copy, its prod environment moved to two fresh PostgreSQL schemas (the store's and
    the shop's) and a queue of its own, all removed after the test."""
    store_url = store_url_for("postgresql")
    shop_url = store_url_for("postgresql")
    store_schema = store_url.rsplit("%3D", 1)[1]
    shop_schema = shop_url.rsplit("%3D", 1)[1]
    server = store_url.split("?", 1)[0].replace("postgresql+psycopg://", "", 1)
    toml = project / "legato.toml"
    toml.write_text(
        toml.read_text()
        .replace("postgres@127.0.0.1:5432/test", server)
        .replace("retail_legato", store_schema)
        .replace("retail_shop", shop_schema)
    )
    queue = f"retail.test.{uuid.uuid4().hex[:12]}"
    settings = project / "retail" / "settings.py"
    settings.write_text(settings.read_text().replace('"retail.daily_summary"', repr(queue)))
    yield project, queue
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_delete(queue)
    finally:
        conn.close()


def queued(amqp_url: str, queue: str) -> list[dict[str, Any]]:
    """Every message in ``queue``, taken off it."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        bodies = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(json.loads(body))
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_prod_runs_on_postgresql_and_publishes_to_rabbitmq(
    prod_project: tuple[Path, str], amqp_url: str
) -> None:
    project, queue = prod_project
    expected = expected_on(project, DAY)
    assert "48 customers, 172 orders" in run_readme(project, "seed_postgres.py")
    # prod must read the shop from PostgreSQL: without the SQLite file, only it is left.
    (project / "data" / "shop.db").unlink()
    run_readme(project, "--env prod secrets set retail_api_token")
    checked = run_readme(project, "--env prod resources check")
    assert "SELECT 1 answered by PostgreSQL" in checked
    assert "ok  broker (amqp)" in checked

    run_readme(project, f"--env prod run daily_sales --partition {DAY}")

    run = latest_run(project, "--env", "prod")
    assert (run["state"], run["environment"]) == ("succeeded", "prod")
    loaded = warehouse_rows(project, ".legato/prod/warehouse.duckdb")
    assert {k: (n, pytest.approx(r, abs=0.011)) for k, (n, r, _) in loaded.items()} == expected
    pushed = webhook_rows(project, ".legato/prod/webhook/daily_summary.jsonl")
    published = queued(amqp_url, queue)
    assert sorted((r["sales_day"], r["country"]) for r in published) == sorted(expected)
    assert sorted(pushed, key=str) == sorted(published, key=str)
    assert {r["run_id"] for r in published} == {run["id"]}
    # The store is PostgreSQL's: the SQLite file of the default environment was never made.
    assert not (project / ".legato" / "legato.db").exists()
