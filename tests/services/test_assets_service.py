"""Assets through real runs: each successful attempt of a producing task records a
materialization per asset, for the run's partition, with its output's metadata; the catalog
and the lineage graph span three pipelines. Once per store backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from legato.domain.states import RunState
from legato.services.door import Door
from legato.services.service_errors import NotFoundError
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project

#: Three pipelines: ``ingest`` (daily partitions) makes shop.orders from an outside source,
#: ``transform`` makes the warehouse's tables from it (pandas), ``report`` a report (polars)
#: from the daily sales. A secret the producing task read lands in a preview, masked.
CODE = '''
from legato import Asset, Context, pipeline, task
from legato.partitions import daily


@task(consumes="shop.orders_raw")
def extract(ctx: Context) -> list[dict]:
    return [{"order_id": i, "amount": 10.0 * i, "day": ctx.partition} for i in range(1, 8)]


@task(produces=Asset("shop.orders", description="orders as the shop exports them",
                     owner="sales", tags=("raw",)))
def orders(ctx: Context, rows: list[dict]) -> list[dict]:
    ctx.add_metadata(source="drop/orders.csv", late_rows=2)
    rows[0]["note"] = f"fetched with {ctx.secrets['shop_token']}"
    rows[1]["note"] = "x" * 500
    return rows


@pipeline(partitions=daily(start="2026-01-01"))
def ingest():
    orders(extract())


@task(consumes="shop.orders", produces="warehouse.orders", in_process=True)
def clean(ctx: Context):
    import pandas as pd

    return pd.DataFrame({"order_id": [1, 2, 3], "amount": [10.0, 20.0, 30.5]})


@task(produces="warehouse.daily_sales")
def daily_sales(frame):
    return frame.groupby("order_id", as_index=False)["amount"].sum()


@pipeline(partitions=daily(start="2026-01-01"))
def transform():
    daily_sales(clean())


@task(consumes="warehouse.daily_sales", produces="reports.sales")
def report(ctx: Context):
    import polars as pl

    return pl.DataFrame({"day": ["2026-01-05"], "total": [60.5]})


@task
def publish(table) -> None:
    return None


@pipeline
def reporting():
    publish(report())
'''


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Workspace]:
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra))
    yield ws
    ws.close()


def _run(d: Door, pipeline: str, partition: str | None = None) -> str:
    run = d.runs.run_pipeline(pipeline, partition=partition)
    assert run.state == RunState.SUCCEEDED, run.error
    return run.id


def test_materializations_per_partition_with_metadata(ws: Workspace) -> None:
    d = door(ws)
    d.secrets.set("shop_token", "tok-5ecret-123")
    first = _run(d, "ingest", "2026-01-05")
    _run(d, "ingest", "2026-01-06")
    _run(d, "ingest", "2026-01-06")  # a partition made again: its newest counts

    view = d.assets.asset("shop.orders")
    assert [m.partition for m in view.partitions] == ["2026-01-06", "2026-01-05"]
    assert view.counts.materializations == 3 and view.counts.partitions == 2
    assert [m.partition for m in view.history] == ["2026-01-06", "2026-01-06", "2026-01-05"]
    oldest = view.history[-1]
    assert (oldest.run_id, oldest.pipeline, oldest.task_key) == (first, "ingest", "orders")
    meta = oldest.metadata
    assert meta["rows"] == 7
    assert {"name": "order_id", "type": "int"} in meta["columns"]
    assert meta["bytes"] > 0 and meta["bytes_exact"] is True  # the stored result's size
    assert len(meta["preview"]) == 5
    assert meta["preview"][0]["note"] == "fetched with ****"  # the secret, masked
    assert len(meta["preview"][1]["note"]) == 120  # long values cut
    assert meta["values"] == {"source": "drop/orders.csv", "late_rows": 2}
    # Paging through one partition's history.
    page = d.assets.materializations("shop.orders", partition="2026-01-06", limit=1)
    older = d.assets.materializations(
        "shop.orders", partition="2026-01-06", before_id=page[0].id, limit=5
    )
    assert len(page) == 1 and len(older) == 1 and older[0].id < page[0].id
    # Tasks that produce nothing record nothing.
    assert [m.asset for m in ws.store.assets.of_run(first)] == ["shop.orders"]


@pytest.fixture(params=BACKENDS)
def ws_threads(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Workspace]:
    # Tasks in threads of the test process: forked workers hang on polars (and its thread
    # pool) when the test process used polars before, as other tests running in it do.
    extra = f'mode = "thread"\n\n[store]\nurl = "{store_url_for(request.param)}"\n'
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra))
    yield ws
    ws.close()


def test_catalog_and_lineage_across_three_pipelines(ws_threads: Workspace) -> None:
    ws = ws_threads
    d = door(ws)
    d.secrets.set("shop_token", "t")
    _run(d, "ingest", "2026-01-05")
    _run(d, "transform", "2026-01-05")
    _run(d, "reporting")

    catalog = {e.key: e for e in d.assets.catalog()}
    assert list(catalog) == [
        "reports.sales", "shop.orders", "shop.orders_raw", "warehouse.daily_sales",
        "warehouse.orders",
    ]
    orders = catalog["shop.orders"]
    assert (orders.description, orders.owner, orders.tags) == (
        "orders as the shop exports them", "sales", ("raw",))
    assert orders.producers == ("ingest.orders",) and orders.consumers == ("transform.clean",)
    assert orders.partitions is not None and orders.partitions["kind"] == "daily"
    assert orders.latest is not None and orders.latest.partition == "2026-01-05"
    raw = catalog["shop.orders_raw"]  # read from outside: consumed, never materialized
    assert raw.producers == () and raw.latest is None
    sales = catalog["warehouse.daily_sales"].latest
    assert sales is not None and sales.metadata["rows"] == 3
    assert sales.metadata["columns"] == [
        {"name": "order_id", "type": "int64"}, {"name": "amount", "type": "float64"}]
    report = catalog["reports.sales"].latest
    assert report is not None and report.partition is None  # its pipeline has no partitions
    assert report.metadata["preview"] == [{"day": "2026-01-05", "total": 60.5}]
    assert report.metadata["bytes_exact"] is True

    lineage = d.assets.lineage()
    assert lineage.edges == (
        ("shop.orders", "warehouse.orders"),
        ("shop.orders_raw", "shop.orders"),
        ("warehouse.daily_sales", "reports.sales"),
        ("warehouse.orders", "warehouse.daily_sales"),
    )
    daily = d.assets.asset("warehouse.daily_sales")
    # The nearest asset made upstream in its pipeline, not the ones further up.
    assert daily.upstream == ("warehouse.orders",) and daily.downstream == ("reports.sales",)
    assert d.assets.asset("shop.orders").upstream == ("shop.orders_raw",)
    assert [e.key for e in d.assets.catalog(search="WAREHOUSE", limit=1, offset=1)] == [
        "warehouse.orders"]
    with pytest.raises(NotFoundError):
        d.assets.asset("no.such")


def test_a_scoped_actor_sees_the_assets_of_its_pipelines_only(ws: Workspace) -> None:
    from legato.services.actor import Actor

    d = door(ws)
    d.secrets.set("shop_token", "t")
    _run(d, "ingest", "2026-01-05")
    _run(d, "transform", "2026-01-05")
    viewer = ws.door(Actor.http_client(
        "token:viewer", permissions=ws.roles.permissions("viewer"), role="viewer",
        auth="token", scope=("transform",)))  # fmt: skip
    catalog = {e.key: e for e in viewer.assets.catalog()}
    # What transform reads and makes; ingest's producer is not named to it.
    assert list(catalog) == ["shop.orders", "warehouse.daily_sales", "warehouse.orders"]
    assert catalog["shop.orders"].producers == () and catalog["shop.orders"].latest is None
    assert catalog["warehouse.orders"].latest is not None
    assert viewer.assets.asset("shop.orders").history == ()
    with pytest.raises(NotFoundError):
        viewer.assets.asset("reports.sales")


MAPPED = '''
from legato import pipeline, task


@task
def regions() -> list[str]:
    return ["eu", "us"]


@task(produces="sales.by_region")
def per_region(region: str) -> list[dict]:
    return [{"region": region}] * (3 if region == "eu" else 5)


@pipeline
def fan():
    per_region.map(regions())
'''


def test_a_mapped_task_records_a_materialization_per_element(tmp_path: Path) -> None:
    ws = Workspace(make_project(tmp_path / "mapped", MAPPED))
    try:
        d = door(ws)
        _run(d, "fan")
        made = d.assets.materializations("sales.by_region")
        assert sorted((m.task_key, m.rows) for m in made) == [
            ("per_region[0]", 3), ("per_region[1]", 5)]
    finally:
        ws.close()
