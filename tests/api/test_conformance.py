"""The API does what its OpenAPI document says (found by schemathesis, test_fuzz.py)."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

STATES = ["queued", "running", "succeeded", "failed", "canceled"]


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1", "1e9"])
def test_a_time_filter_must_be_a_date_and_time(api: Api, value: str) -> None:
    # The document says format date-time: a number is not one (it was read as a Unix time).
    for field in ("created_before", "created_after"):
        r = api.get("/runs", params={field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert r.json()["field"] == field
        assert "date and time" in r.json()["error"]
    r = api.get("/runs", params={"created_before": "2026-03-02T09:00:00Z"})
    assert r.status_code == 200


def test_run_states_are_an_enum_in_the_document_and_the_api(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").json()
    state = next(
        p for p in doc["paths"]["/api/v1/runs"]["get"]["parameters"] if p["name"] == "state"
    )
    items = state["schema"]["items"]
    if "$ref" in items:
        items = doc["components"]["schemas"][items["$ref"].rsplit("/", 1)[1]]
    assert sorted(items["enum"]) == sorted(STATES)
    r = api.get("/runs", params={"state": "2"})
    assert r.status_code == 422
    assert r.json()["field"] == "state" and "queued" in r.json()["error"]
    assert api.get("/runs", params={"state": ["queued", "failed"]}).status_code == 200


@pytest.mark.parametrize("body", [b"{bad", b'{"params": {', b"\xff", b'{"params": "\xff"}'])
@pytest.mark.parametrize("path", ["/pipelines/greet/runs", "/backfills", "/runs/x/rerun"])
def test_a_body_that_is_not_json_answers_the_documented_shape(
    api: Api, path: str, body: bytes
) -> None:
    r = api.client.post(
        "/api/v1" + path, content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json() == {"error": r.json()["error"], "field": None}
    assert "not valid JSON" in r.json()["error"]


def test_framework_answers_have_the_documented_shape(api: Api) -> None:
    r = api.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found", "field": None}
    r = api.client.delete("/api/v1/runs")
    assert r.status_code == 405
    assert r.json() == {"error": "Method Not Allowed", "field": None}
    assert r.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/backfills", {"GET", "POST"}),
        ("/runs", {"GET"}),
        ("/hooks/greet/hook", {"POST"}),
        ("/runs/some-run/cancel", {"POST"}),
    ],
)
def test_options_and_405_list_every_method_of_the_path(
    api: Api, path: str, methods: set[str]
) -> None:
    r = api.client.options("/api/v1" + path)
    assert r.status_code == 204, r.text
    assert set(r.headers["allow"].split(", ")) == methods | {"OPTIONS"}
    r = api.client.put("/api/v1" + path)
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == methods
    assert r.json()["field"] is None
    # The document lists the same methods.
    doc = api.client.get("/api/v1/openapi.json").json()
    template = {
        "/runs/some-run/cancel": "/runs/{run_id}/cancel",
        "/hooks/greet/hook": "/hooks/{pipeline}/{trigger}",
    }.get(path, path)
    assert {m.upper() for m in doc["paths"]["/api/v1" + template]} == methods
