"""``POST /api/v1/assets/{key}/materialize``: a client queues a run of the producing pipeline
limited to what the asset needs, and reads it back as any run; errors say what is wrong,
with the field at fault; a viewer is refused."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.conftest import Api
from tests.helpers import api_token

CODE = """
from legato import pipeline, task
from legato.partitions import static


@task(consumes="crm.customers")
def customers(ctx) -> list[dict]:
    return [{"id": 1, "region": ctx.partition}]


@task(produces="shop.orders")
def orders(rows: list[dict], limit: int) -> list[dict]:
    return [{"order": i, "customer": rows[0]["id"]} for i in range(limit)]


@task(produces="shop.refunds")
def refunds(rows: list[dict]) -> list[dict]:
    return []


@pipeline(partitions=static(["eu", "us"]))
def ingest(limit: int = 3):
    rows = customers()
    orders(rows, limit)
    refunds(rows)
"""


def test_materialize_queues_a_narrowed_run(make_api: Callable[..., Api]) -> None:
    api = make_api(CODE)
    full = api.run("ingest", partition="eu", params={"limit": 2})
    assert full["run"]["state"] == "succeeded"
    api.clock.advance(1)

    r = api.post("/assets/shop.orders/materialize", {"partition": "eu", "params": {"limit": 2}})
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["state"], run["pipeline"], run["partition"]) == ("queued", "ingest", "eu")
    assert run["origin"] == "materialize:shop.orders"
    assert api.heard[-1] is not None and api.heard[-1].id == run["id"]  # the daemon is told

    done = api.execute(run["id"])
    assert done["run"]["state"] == "succeeded"
    tasks = {t["task_key"]: (t["state"], t["reused_from"]) for t in done["tasks"]}
    assert tasks == {
        "customers": ("succeeded", full["run"]["id"]),
        "orders": ("succeeded", None),
        "refunds": ("skipped", None),
    }
    skipped = next(t for t in done["tasks"] if t["task_key"] == "refunds")
    assert skipped["error"] == "not needed to materialize shop.orders"
    events = api.get(f"/runs/{run['id']}/events").json()
    said = [e["message"] for e in events if e["kind"] == "origin"]
    assert said == [
        "materialize shop.orders: runs orders",
        f"reuses customers from run {full['run']['id']}",
    ]


def test_errors_name_the_field(make_api: Callable[..., Api]) -> None:
    api = make_api(CODE)
    cases = [
        ({}, 422, "partition", "say which partition"),
        ({"partition": "asia"}, 422, "partition", "asia"),
        ({"partition": "eu", "params": {"limit": "x"}}, 422, "limit", "limit"),
        ({"partition": "eu", "pipeline": "nope"}, 404, None, "nope"),
    ]
    for body, status, field, text in cases:
        r = api.post("/assets/shop.orders/materialize", body)
        assert r.status_code == status, (body, r.text)
        assert r.json().get("field") == field and text in r.json()["error"], (body, r.text)
    r = api.post("/assets/crm.customers/materialize", {"partition": "eu"})
    assert r.status_code == 422 and r.json()["field"] == "key"
    assert "no producer in the project" in r.json()["error"]
    r = api.post("/assets/no.such/materialize")
    assert r.status_code == 404
    r = api.post("/assets/shop.orders/materialize", {"partition": "eu", "extra": 1})
    assert r.status_code == 422  # an unknown field is a mistake, not ignored
    assert api.get("/runs").json()["runs"] == []

    viewer = api_token(api.ws, "viewer")
    r = api.client.post(
        "/api/v1/assets/shop.orders/materialize",
        json={"partition": "eu"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert r.status_code == 403
