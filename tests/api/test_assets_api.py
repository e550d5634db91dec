"""``/api/v1/assets``, ``/api/v1/assets/{key}`` with its materializations page by page, and
``/api/v1/lineage``: what runs made, as a client reads it; a viewer may read them all."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.conftest import Api
from tests.helpers import api_token

CODE = """
from legato import Asset, Context, pipeline, task
from legato.partitions import static


@task(consumes="crm.customers", produces=Asset("shop.orders", owner="sales"))
def orders(ctx: Context) -> list[dict]:
    ctx.add_metadata(region=ctx.partition)
    return [{"id": i, "region": ctx.partition} for i in range(3)]


@pipeline(partitions=static(["eu", "us"]))
def ingest():
    orders()


@task(consumes="shop.orders", produces="reports.orders")
def report(ctx: Context) -> dict:
    return {"total": 6}


@pipeline
def reporting():
    report()
"""


def test_catalog_asset_materializations_and_lineage(make_api: Callable[..., Api]) -> None:
    api = make_api(CODE)
    for region in ("eu", "us", "eu"):
        assert api.run("ingest", partition=region)["run"]["state"] == "succeeded"
        api.clock.advance(1)
    assert api.run("reporting")["run"]["state"] == "succeeded"

    r = api.get("/assets")
    assert r.status_code == 200, r.text
    catalog = {a["key"]: a for a in r.json()}
    assert list(catalog) == ["crm.customers", "reports.orders", "shop.orders"]
    orders = catalog["shop.orders"]
    assert orders["owner"] == "sales" and orders["producers"] == ["ingest.orders"]
    assert orders["consumers"] == ["reporting.report"]
    assert orders["partitions"]["kind"] == "static"
    latest = orders["latest"]
    assert latest["partition"] == "eu" and latest["metadata"]["rows"] == 3
    assert latest["metadata"]["values"] == {"region": "eu"}
    assert catalog["reports.orders"]["latest"]["metadata"]["type"] == "dict"
    assert [a["key"] for a in api.get("/assets", params={"search": "orders", "limit": 1})
            .json()] == ["reports.orders"]  # fmt: skip

    r = api.get("/assets/shop.orders")
    assert r.status_code == 200, r.text
    one = r.json()
    assert [m["partition"] for m in one["partitions"]] == ["us", "eu"]
    assert one["counts"] == {"materializations": 3, "partitions": 2}
    assert one["upstream"] == ["crm.customers"] and one["downstream"] == ["reports.orders"]

    page = api.get("/assets/shop.orders/materializations", params={"limit": 2}).json()
    assert [m["partition"] for m in page] == ["eu", "us"]
    rest = api.get(
        "/assets/shop.orders/materializations", params={"before": page[-1]["id"]}
    ).json()
    assert [m["partition"] for m in rest] == ["eu"]
    only_us = api.get("/assets/shop.orders/materializations", params={"partition": "us"})
    assert [m["partition"] for m in only_us.json()] == ["us"]

    lineage = api.get("/lineage").json()
    assert {n["key"] for n in lineage["nodes"]} == set(catalog)
    assert lineage["edges"] == [
        {"upstream": "crm.customers", "downstream": "shop.orders"},
        {"upstream": "shop.orders", "downstream": "reports.orders"},
    ]

    assert api.get("/assets/no.such").status_code == 404
    assert api.get("/assets/shop.orders/materializations", params={"limit": 0}).status_code == 422
    viewer = {"Authorization": f"Bearer {api_token(api.ws, 'viewer')}"}
    for path in ("/assets", "/assets/shop.orders", "/lineage"):
        assert api.client.get(f"/api/v1{path}", headers=viewer).status_code == 200


def test_freshness_the_stale_filter_and_a_neighbourhood_of_the_graph(
    make_api: Callable[..., Api],
) -> None:
    code = CODE.replace(
        'Asset("shop.orders", owner="sales")',
        'Asset("shop.orders", owner="sales", freshness=__import__("datetime").timedelta(hours=1))',
    )
    api = make_api(code)
    assert api.run("ingest", partition="eu")["run"]["state"] == "succeeded"

    def freshness() -> dict[str, dict]:
        return {a["key"]: a["freshness"] for a in api.get("/assets").json()}

    assert freshness()["shop.orders"] == {
        "state": "fresh", "why": None, "missing": [], "late_since": None
    }
    assert freshness()["reports.orders"]["state"] == "none"
    assert api.get("/assets", params={"stale": "true"}).json() == []

    api.clock.advance(2 * 3600)  # static keys only: the newest materialization is 2 h old
    (stale,) = api.get("/assets", params={"stale": "true"}).json()
    assert stale["key"] == "shop.orders"
    assert stale["freshness"]["state"] == "stale"
    assert stale["freshness"]["why"] == "last materialized 2 h 0 min ago (allowed 1 h 0 min)"
    one = api.get("/assets/shop.orders").json()["entry"]["freshness"]
    assert one["state"] == "stale" and one["late_since"] is not None

    r = api.get("/lineage", params={"focus": "reports.orders", "depth": 1})
    assert r.status_code == 200, r.text
    part = r.json()
    assert [n["key"] for n in part["nodes"]] == ["reports.orders", "shop.orders"]
    assert part["edges"] == [{"upstream": "shop.orders", "downstream": "reports.orders"}]
    assert (part["total"], part["cut"]) == (3, False)
    assert {n["key"]: n["freshness"]["state"] for n in part["nodes"]}["shop.orders"] == "stale"
    capped = api.get("/lineage", params={"limit": 1}).json()
    assert len(capped["nodes"]) == 1 and capped["cut"] is True
    assert api.get("/lineage", params={"focus": "no.such"}).status_code == 404
