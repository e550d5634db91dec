"""An ``on_asset`` trigger in the web UI: the asset's page names the pipelines it starts,
linked, and the pipeline's page lists the trigger with its assets; the API's asset answer
carries them too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import make_project, signed_client

CODE = """
from legato import pipeline, task
from legato.triggers import on_asset


@task(produces="shop.orders")
def orders():
    return [1]


@task(produces="crm.customers")
def customers():
    return [1]


@pipeline
def ingest():
    orders()
    customers()


@task(consumes="shop.orders")
def report():
    return 1


@pipeline(triggers=[on_asset("shop.orders", "crm.customers")])
def reporting():
    report()
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(make_project(tmp_path / "proj", CODE)) as w:
        yield w


def test_the_asset_and_pipeline_pages_show_the_trigger(ws: Workspace) -> None:
    client = signed_client(ws, "viewer")
    asset = client.get("/assets/crm.customers")
    assert asset.status_code == 200, asset.text
    assert '<ul class="triggers"><li><a href="/pipelines/reporting">reporting</a>' in asset.text
    orders_page = client.get("/assets/shop.orders").text
    assert '<a href="/pipelines/reporting">reporting</a>' in orders_page
    pipe = client.get("/pipelines/reporting")
    assert pipe.status_code == 200, pipe.text
    assert "<td>asset-shop.orders-crm.customers</td>" in pipe.text
    assert '<span class="muted">assets</span> shop.orders, crm.customers' in pipe.text
    api = client.get("/api/v1/assets/crm.customers")
    assert api.json()["triggers"] == ["reporting"]
