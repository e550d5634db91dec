"""``on_asset`` as declared: its keys and name, and the load errors for an asset nothing
produces (with the nearest key produced) and for a pipeline triggered by its own asset."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato.loader import load_project
from legato.triggers import on_asset
from tests.helpers import make_project

CODE = """
from legato import pipeline, task
from legato.triggers import on_asset

@task(produces="shop.orders")
def orders():
    return 1

@task(consumes="shop.orders", produces="warehouse.sales")
def sales():
    return 2

@pipeline
def ingest():
    orders()

@pipeline(triggers=[on_asset("shop.order")])
def typo():
    sales()

@pipeline(triggers=[on_asset("warehouse.sales")])
def loop():
    sales()

@pipeline(triggers=[on_asset("shop.orders")])
def fine():
    sales()
"""


def test_an_asset_nothing_produces_or_its_own_asset_leaves_the_pipeline_out(
    tmp_path: Path,
) -> None:
    project = load_project(make_project(tmp_path / "p", CODE))
    # "fine" and "loop" share the task producing warehouse.sales: no producer conflict.
    assert sorted(project.pipelines) == ["fine", "ingest"]
    flows = str(tmp_path / "p" / "flows.py")

    def at(key: str) -> str:
        line = CODE.splitlines().index(f'@pipeline(triggers=[on_asset("{key}")])') + 1
        return f"{flows}:{line}"

    assert {e.message for e in project.errors} == {
        f"{at('shop.order')}: pipeline 'typo': triggers: "
        "'asset-shop.order' waits for asset 'shop.order', which no task produces; did you "
        "mean 'shop.orders'?",
        f"{at('warehouse.sales')}: pipeline 'loop': "
        "triggers: 'asset-warehouse.sales' waits for asset 'warehouse.sales', which one of its "
        "own tasks produces: each run would start the next",
    }


def test_keys_are_checked_and_deduplicated_and_the_name_follows_them() -> None:
    assert on_asset("a.b").name == "asset-a.b"
    both = on_asset("a", ["b", "a"])
    assert (both.assets, both.name, both.kind) == (("a", "b"), "asset-a-b", "asset")
    assert on_asset("a", "b", "c", "d").name == "asset-a-and-3-more"
    assert on_asset("a", name="inputs").describe() == {
        "kind": "asset",
        "name": "inputs",
        "assets": ["a"],
    }
    with pytest.raises(ValueError, match="on_asset needs an asset key"):
        on_asset()
    with pytest.raises(ValueError, match="asset key 'no spaces'"):
        on_asset("no spaces")
