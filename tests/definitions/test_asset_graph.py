"""The asset graph from the definitions alone, and the load-time rule that an asset has one
producing task."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato import Asset
from legato.definitions.asset_graph import asset_graph
from legato.loader import load_project
from tests.helpers import make_project

TWO_MAKERS = """
from legato import pipeline, task


@task(produces="warehouse.sales")
def load_sales() -> int:
    return 1


@task(produces="warehouse.sales")
def load_sales_again() -> int:
    return 2


@pipeline
def nightly():
    load_sales()


@pipeline
def weekly():
    load_sales_again()


@pipeline
def replay():
    load_sales()  # the same task again: the same producer
"""

CHAIN = """
from legato import Asset, pipeline, task


@task(consumes=["crm.customers", "shop.orders"])
def extract() -> int:
    return 1


@task
def shape(x: int) -> int:
    return x


@task(produces="stage.orders")
def stage(x: int) -> int:
    return x


@task(consumes=Asset("stage.orders", description="staged"), produces="mart.orders")
def mart(x: int) -> int:
    return x


@pipeline
def flow():
    mart(stage(shape(extract())))
"""


def test_two_tasks_producing_one_asset_is_a_load_error_naming_both(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path / "p", TWO_MAKERS))
    assert sorted(project.pipelines) == ["nightly", "replay"]
    (error,) = project.errors
    flows = str(tmp_path / "p" / "flows.py")
    assert error.message == (
        f"{flows}:10: asset 'warehouse.sales' is produced by task weekly.load_sales_again "
        f"and by task nightly.load_sales ({flows}:5): an asset has one producing task"
    )


def test_upstream_passes_through_tasks_producing_nothing(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path / "p", CHAIN))
    assert project.errors == []
    graph = asset_graph(project.pipelines.values())
    assert graph.edges == [
        ("crm.customers", "stage.orders"),
        ("shop.orders", "stage.orders"),
        ("stage.orders", "mart.orders"),
    ]
    staged = graph.nodes["stage.orders"]
    # The fuller declaration (a consumer's here) describes the asset.
    assert staged.asset.description == "staged"
    assert [str(p) for p in staged.producers] == ["flow.stage"]
    assert [str(c) for c in staged.consumers] == ["flow.mart"]
    assert staged.downstream == {"mart.orders"}


def test_an_asset_takes_its_freshness_as_a_duration_text_or_seconds() -> None:
    from datetime import timedelta

    assert Asset("a.b", freshness="6h").freshness == timedelta(hours=6)
    assert Asset("a.b", freshness=90).freshness == timedelta(seconds=90)
    assert Asset("a.b", freshness=timedelta(minutes=5)).freshness == timedelta(minutes=5)
    with pytest.raises(ValueError, match="freshness"):
        Asset("a.b", freshness="soon")
    with pytest.raises(ValueError, match="positive"):
        Asset("a.b", freshness=timedelta(0))
