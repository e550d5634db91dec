"""The OpenAPI document: served, complete, every route under /api/v1."""

from __future__ import annotations

from tests.api.conftest import Api

EXPECTED = {
    ("get", "/api/v1/pipelines"),
    ("get", "/api/v1/pipelines/{pipeline}"),
    ("get", "/api/v1/pipelines/{pipeline}/partitions"),
    ("get", "/api/v1/pipelines/{pipeline}/partitions/summary"),
    ("post", "/api/v1/pipelines/{pipeline}/runs"),
    ("post", "/api/v1/pipelines/{pipeline}/schedules/pause"),
    ("post", "/api/v1/pipelines/{pipeline}/schedules/unpause"),
    ("post", "/api/v1/pipelines/{pipeline}/schedules/{name}/pause"),
    ("post", "/api/v1/pipelines/{pipeline}/schedules/{name}/unpause"),
    ("post", "/api/v1/pipelines/{pipeline}/triggers/{name}/pause"),
    ("post", "/api/v1/pipelines/{pipeline}/triggers/{name}/unpause"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{run_id}"),
    ("get", "/api/v1/runs/{run_id}/code"),
    ("get", "/api/v1/runs/{run_id}/events"),
    ("get", "/api/v1/runs/{run_id}/events/stream"),
    ("get", "/api/v1/runs/{run_id}/tasks/{task_key}/attempts/{attempt}/log"),
    ("get", "/api/v1/runs/{run_id}/tasks/{task_key}/attempts/{attempt}/log/stream"),
    ("post", "/api/v1/runs/{run_id}/cancel"),
    ("post", "/api/v1/runs/{run_id}/rerun"),
    ("post", "/api/v1/runs/{run_id}/tasks/{task_key}/mark"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/audit/verify"),
    ("get", "/api/v1/backfills"),
    ("post", "/api/v1/backfills"),
    ("get", "/api/v1/backfills/{backfill_id}"),
    ("get", "/api/v1/backfills/{backfill_id}/keys"),
    ("post", "/api/v1/backfills/{backfill_id}/pause"),
    ("post", "/api/v1/backfills/{backfill_id}/resume"),
    ("post", "/api/v1/backfills/{backfill_id}/cancel"),
    ("get", "/api/v1/queue"),
    ("post", "/api/v1/queue/{run_id}/move"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/overview"),
    ("post", "/api/v1/hooks/{pipeline}/{trigger}"),
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/alerts/rules"),
    ("get", "/api/v1/alerts/silences"),
    ("post", "/api/v1/alerts/rules/{rule}/silence"),
    ("post", "/api/v1/alerts/rules/{rule}/unsilence"),
    ("post", "/api/v1/alerts/rules/{rule}/test"),
    ("get", "/api/v1/code"),
    ("get", "/api/v1/code/stream"),
    ("get", "/api/v1/resources"),
    ("post", "/api/v1/resources/check"),
    ("get", "/api/v1/config"),
    ("get", "/api/v1/assets"),
    ("get", "/api/v1/assets/{key}"),
    ("get", "/api/v1/assets/{key}/materializations"),
    ("post", "/api/v1/assets/{key}/materialize"),
    ("get", "/api/v1/lineage"),
    ("get", "/api/v1/checks"),
}


def test_openapi_document_lists_every_route_under_api_v1(api: Api) -> None:
    r = api.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "Legato" and doc["info"]["version"] == "0.1.0"
    ops = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert ops == EXPECTED
    assert all(p.startswith("/api/v1/") for p in doc["paths"])
    # The routes answer under /api/v1 only.
    assert api.client.get("/api/v1/pipelines").status_code == 200
    assert api.client.get("/pipelines").status_code == 404
    assert api.client.get("/api/pipelines").status_code == 404


def test_errors_are_documented(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").json()
    run = doc["paths"]["/api/v1/runs/{run_id}/cancel"]["post"]
    assert {"200", "404", "409", "422"} <= set(run["responses"])
    hook = doc["paths"]["/api/v1/hooks/{pipeline}/{trigger}"]["post"]
    assert {"200", "201", "400", "401", "404", "409", "422"} <= set(hook["responses"])
    stream = doc["paths"]["/api/v1/runs/{run_id}/events/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]


def test_docs_and_root(api: Api) -> None:
    r = api.client.get("/api/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/api/docs"
