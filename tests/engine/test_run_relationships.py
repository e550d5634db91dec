"""A relationship check with another asset, inside runs: it reads that asset's newest
materialization (of the same partition when it is partitioned the same way), or this run's
value when an upstream task produced it; a missing key blocks with the failing rows, an asset
never materialized is an error that says so."""

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
from legato.partitions import daily

HERE = Path(__file__).parent
DAYS = daily(start="2026-12-01", tz="UTC")
KNOWN = checks.relationship("customer_id", "shop.customers", "id")

def mark(name):
    with open(HERE / "marks.txt", "a") as fh:
        fh.write(name + "\\n")

def numbers(text):
    return [int(x) for x in text.split(",")]

@task(produces="shop.customers")
def customers(ids: str) -> pd.DataFrame:
    got = numbers(ids)
    return pd.DataFrame({"id": got, "name": [f"c{i}" for i in got], "notes": ["x"] * len(got)})

@task(produces="shop.orders", checks=[KNOWN])
def orders(customer_ids: str) -> pd.DataFrame:
    got = numbers(customer_ids)
    return pd.DataFrame({"order_id": range(1, len(got) + 1), "customer_id": got})

@task(checks=[KNOWN])
def orders_after(customer_ids: str, known: pd.DataFrame) -> pd.DataFrame:
    got = numbers(customer_ids)
    return pd.DataFrame({"order_id": range(1, len(got) + 1), "customer_id": got})

@task
def report(df: pd.DataFrame) -> int:
    mark("report")
    return len(df)

@pipeline
def crm(ids: str = "1,2,3"):
    customers(ids)

@pipeline
def shop(customer_ids: str = "1,2"):
    report(orders(customer_ids))

@pipeline
def together(ids: str = "7", customer_ids: str = "7"):
    report(orders_after(customer_ids, customers(ids)))

@task(produces="shop.day_customers")
def day_customers(ids: str) -> list:
    return [{"id": i} for i in numbers(ids)]

@task(checks=[checks.relationship("customer_id", "shop.day_customers", "id")])
def day_orders(customer_ids: str) -> list:
    return [{"customer_id": i} for i in numbers(customer_ids)]

@pipeline(partitions=DAYS)
def day_crm(ids: str = "1"):
    day_customers(ids)

@pipeline(partitions=DAYS)
def day_shop(customer_ids: str = "1"):
    day_orders(customer_ids)
"""


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]):
    extra = ""
    if request.param == "postgresql":
        extra = f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
    workspace = Workspace(make_project(tmp_path / "proj", CODE, extra=extra))
    yield workspace
    workspace.close()


def results(ws: Workspace, run_id: str) -> dict[str, object]:
    return {r.result.task_key: r.result for r in ws.store.checks.list(run_id=run_id)}


def test_the_other_asset_never_materialized_is_an_error_that_says_so(ws: Workspace) -> None:
    run = door(ws).runs.run_pipeline("shop", {"customer_ids": "1"})
    assert run.state == RunState.FAILED
    tasks = {t.task_key: t for t in door(ws).runs.task_runs(run.id)}
    assert tasks["report"].state == TaskState.UPSTREAM_FAILED
    (result,) = ws.store.checks.list(run_id=run.id)
    assert result.result.outcome == "error"
    assert result.result.message == (
        "LookupError: asset 'shop.customers' has never been materialized"
    )
    assert result.result.message in doc_blocks("text")[2].splitlines()  # docs/checks.md
    assert "check relationship(customer_id -> shop.customers.id) could not be evaluated" in (
        tasks["orders"].error or ""
    )


def test_every_key_found_passes_and_a_missing_customer_blocks_with_its_rows(
    ws: Workspace,
) -> None:
    d = door(ws)
    assert d.runs.run_pipeline("crm", {"ids": "1,2,3"}).state == RunState.SUCCEEDED
    good = d.runs.run_pipeline("shop", {"customer_ids": "1,2,3,3"})
    assert good.state == RunState.SUCCEEDED
    (passed,) = ws.store.checks.list(run_id=good.id)
    assert (passed.result.outcome, passed.result.failed_count) == ("passed", 0)
    assert marks(ws.config.root / "marks.txt") == ["report"]

    bad = d.runs.run_pipeline("shop", {"customer_ids": "1,4,2,5"})
    assert bad.state == RunState.FAILED
    tasks = {t.task_key: t for t in d.runs.task_runs(bad.id)}
    assert tasks["report"].state == TaskState.UPSTREAM_FAILED
    assert marks(ws.config.root / "marks.txt") == ["report"]  # not run again
    (failed,) = ws.store.checks.list(run_id=bad.id)
    assert (failed.result.outcome, failed.result.failed_count, failed.result.total_count) == (
        "failed", 2, 4,
    )
    assert failed.result.sample == (
        {"order_id": 2, "customer_id": 4}, {"order_id": 4, "customer_id": 5},
    )
    assert "check relationship(customer_id -> shop.customers.id) failed (2 of 4 rows)" in (
        tasks["orders"].error or ""
    )


def test_an_upstream_task_of_the_same_run_gives_its_value_from_this_run(ws: Workspace) -> None:
    d = door(ws)
    d.runs.run_pipeline("crm", {"ids": "1,2,3"})  # the newest materialization lacks 7
    run = d.runs.run_pipeline("together", {"ids": "7", "customer_ids": "7"})
    assert run.state == RunState.SUCCEEDED, run.error
    (passed,) = ws.store.checks.list(run_id=run.id)
    assert passed.result.outcome == "passed"


def test_an_asset_partitioned_the_same_way_is_read_in_the_runs_partition(ws: Workspace) -> None:
    d = door(ws)
    d.runs.run_pipeline("day_crm", {"ids": "1"}, partition="2026-12-01")
    d.runs.run_pipeline("day_crm", {"ids": "2"}, partition="2026-12-02")
    first = d.runs.run_pipeline("day_shop", {"customer_ids": "1"}, partition="2026-12-01")
    assert first.state == RunState.SUCCEEDED  # 1 is a customer of that day, not of the newest
    missing = d.runs.run_pipeline("day_shop", {"customer_ids": "1"}, partition="2026-12-03")
    (result,) = ws.store.checks.list(run_id=missing.id)
    assert result.result.outcome == "error"
    assert result.result.message == (
        "LookupError: asset 'shop.day_customers' has no materialization of partition "
        "'2026-12-03' (its newest is of '2026-12-02')"
    )
    assert result.result.message in doc_blocks("text")[2].splitlines()
