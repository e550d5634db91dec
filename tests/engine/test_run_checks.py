"""A task's data-quality checks run in its attempt: blocking ones stop the data, warnings
are recorded and the run goes on; their results are stored with the attempt's end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from legato.domain.states import RunState, TaskState
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project, marks
from tests.quality.test_checks_doc import blocks as doc_blocks

CODE = """
from pathlib import Path

import pandas as pd

from legato import checks, pipeline, task

HERE = Path(__file__).parent

def mark(name):
    with open(HERE / "marks.txt", "a") as fh:
        fh.write(name + "\\n")

@task(
    produces="shop.orders",
    checks=[
        checks.unique("order_id"),
        checks.accepted_values("status", ["new", "paid"], severity="warn"),
        checks.row_count(min=1),
        checks.relationship("order_id", "shop.refunds", "order_id", severity="warn"),
    ],
)
def orders(bad: bool) -> pd.DataFrame:
    ids = [1, 2, 2, 4] if bad else [1, 2, 3, 4]
    return pd.DataFrame({"order_id": ids, "status": ["new", "paid", "paid", "lost"]})

@task
def report(df: pd.DataFrame) -> int:
    mark("report")
    return len(df)

@pipeline
def shop(bad: bool = False):
    report(orders(bad))
"""


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]):
    extra = ""
    if request.param == "postgresql":
        extra = f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
    workspace = Workspace(make_project(tmp_path / "proj", CODE, extra=extra))
    yield workspace
    workspace.close()


def test_a_blocking_check_stops_downstream_and_says_which_rows_failed(ws: Workspace) -> None:
    run = door(ws).runs.run_pipeline("shop", {"bad": True})
    tasks = {t.task_key: t for t in door(ws).runs.task_runs(run.id)}
    assert run.state == RunState.FAILED
    assert tasks["orders"].state == TaskState.FAILED
    assert tasks["report"].state == TaskState.UPSTREAM_FAILED
    assert marks(ws.config.root / "marks.txt") == []
    error = tasks["orders"].error or ""
    assert "check unique(order_id) failed (2 of 4 rows)" in error
    assert "{'order_id': 2, 'status': 'paid'}" in error
    assert error == doc_blocks("text")[1].strip()  # as docs/checks.md shows it
    # Not retried: the same code gives the same data.
    assert len(door(ws).runs.attempts(run.id, "orders")) == 1
    log = door(ws).runs.logs(run.id, "orders")[0].text()
    assert "check unique(order_id) [block]: failed (2 failing)" in log
    assert "{'order_id': 2, 'status': 'paid'}" in log
    stored = {r.result.check_name: r.result for r in ws.store.checks.list(run_id=run.id)}
    assert stored["unique(order_id)"].outcome == "failed"
    assert stored["unique(order_id)"].failed_count == 2
    assert stored["unique(order_id)"].sample[0] == {"order_id": 2, "status": "paid"}
    assert stored["unique(order_id)"].asset == "shop.orders"
    assert stored["row_count"].outcome == "passed"


def test_a_warning_check_is_recorded_and_the_run_goes_on(ws: Workspace) -> None:
    run = door(ws).runs.run_pipeline("shop", {"bad": False})
    assert run.state == RunState.SUCCEEDED
    assert marks(ws.config.root / "marks.txt") == ["report"]
    stored = {r.result.check_name: r.result for r in ws.store.checks.list(run_id=run.id)}
    warned = stored["accepted_values(status)"]
    assert (warned.severity, warned.outcome, warned.failed_count) == ("warn", "failed", 1)
    assert warned.sample == ({"order_id": 4, "status": "lost"},)
    assert stored["unique(order_id)"].outcome == "passed"
    unreachable = stored["relationship(order_id -> shop.refunds.order_id)"]
    assert unreachable.outcome == "error"
    assert "the data of asset 'shop.refunds' is not reachable from a run" in unreachable.message
    assert all(r.task_key == "orders" and r.pipeline == "shop" for r in stored.values())


def test_a_sql_check_queries_its_resource(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    code = """
import sqlalchemy as sa

from legato import checks, pipeline, task

@task(checks=[checks.sql("SELECT order_id, amount FROM orders WHERE amount < 0",
                         resource="shop_db")])
def load(path: str) -> int:
    engine = sa.create_engine("sqlite:///" + path)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (order_id INTEGER, amount REAL)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (1, 5.0), (2, -1.0)"))
    engine.dispose()
    return 2

@pipeline
def loading(path: str = ""):
    load(path)
"""
    extra = f'\n[resources.shop_db]\nkind = "sql"\nurl = "sqlite:///{db}"\n'
    ws = Workspace(make_project(tmp_path / "proj", code, extra=extra))
    try:
        run = door(ws).runs.run_pipeline("loading", {"path": str(db)})
        [task] = door(ws).runs.task_runs(run.id)
        assert task.state == TaskState.FAILED
        assert "failing rows: {'order_id': 2, 'amount': -1.0}" in (task.error or "")
    finally:
        ws.close()


def test_a_built_in_checks_a_table_of_its_resource(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    code = """
import sqlalchemy as sa

from legato import checks, pipeline, task

@task(checks=[checks.relationship("customer_id", "shop.customers", "id", table="orders",
                                  to_table="customers", resource="shop_db")])
def load(path: str) -> int:
    engine = sa.create_engine("sqlite:///" + path)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER)"))
        conn.execute(sa.text("CREATE TABLE orders (order_id INTEGER, customer_id INTEGER)"))
        conn.execute(sa.text("INSERT INTO customers VALUES (10)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (1, 10), (2, 11)"))
    engine.dispose()
    return 2

@pipeline
def loading(path: str = ""):
    load(path)
"""
    extra = f'\n[resources.shop_db]\nkind = "sql"\nurl = "sqlite:///{db}"\n'
    with Workspace(make_project(tmp_path / "proj", code, extra=extra)) as ws:
        run = door(ws).runs.run_pipeline("loading", {"path": str(db)})
        [task] = door(ws).runs.task_runs(run.id)
        assert task.state == TaskState.FAILED
        assert "(1 of 2 rows)" in (task.error or "")
        assert "failing rows: {'order_id': 2, 'customer_id': 11}" in (task.error or "")


def test_secrets_in_failing_rows_are_masked(tmp_path: Path) -> None:
    code = """
from legato import checks, pipeline, task

@task(checks=[checks.accepted_values("token", ["none"])])
def tokens(ctx) -> list[dict]:
    return [{"id": 1, "token": ctx.secrets["api_token"]}]

@pipeline
def leak():
    tokens()
"""
    value = "s3cr3t-value-42"
    with Workspace(make_project(tmp_path / "proj", code)) as ws:
        door(ws).secrets.set("api_token", value)
        run = door(ws).runs.run_pipeline("leak")
        [task] = door(ws).runs.task_runs(run.id)
        assert "{'id': 1, 'token': '****'}" in (task.error or "")
        [stored] = door(ws).checks.results(run_id=run.id)
        assert stored.result.sample == ({"id": 1, "token": "****"},)
        log = door(ws).runs.logs(run.id, "tokens")[0].text()
        assert value not in log and value not in (task.error or "")


def test_only_output_that_passed_its_blocking_checks_is_a_materialization(
    ws: Workspace,
) -> None:
    # "shop.orders" is produced by the checked task: a blocked output is written but no
    # materialization of the asset, which downstream users of the catalog would trust.
    blocked = door(ws).runs.run_pipeline("shop", {"bad": True})
    good = door(ws).runs.run_pipeline("shop", {"bad": False})
    assert (blocked.state, good.state) == (RunState.FAILED, RunState.SUCCEEDED)
    made = door(ws).assets.materializations("shop.orders")
    assert [m.run_id for m in made] == [good.id]
    assert made[0].metadata["rows"] == 4
