"""GET /pipelines and /pipelines/{name}: runs, schedules, triggers, graph, params, partitions."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import DAYS, Api


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {x["name"]: x for x in items}


def test_list_shows_schedules_triggers_and_next_run(api: Api) -> None:
    r = api.get("/pipelines")
    assert r.status_code == 200
    pipes = r.json()
    assert [p["name"] for p in pipes] == ["days", "flaky", "greet"]
    greet = by_name(pipes)["greet"]
    assert greet["description"] == "Greets twice a day."
    assert greet["tags"] == ["demo"]
    assert greet["paused"] is False
    assert greet["last_run"] is None and greet["recent_runs"] == []
    # At 09:00 the hourly schedule (minute 30) comes before the nightly one (03:00).
    assert greet["next_run"] == "2026-03-02T09:30:00Z"
    assert by_name(greet["schedules"]) == {
        "nightly": {
            "name": "nightly",
            "expression": "0 3 * * *",
            "tz": "UTC",
            "catchup": "latest",
            "paused": False,
            "last_tick": None,
            "next_tick": "2026-03-03T03:00:00Z",
        },
        "hourly": {
            "name": "hourly",
            "expression": "30 * * * *",
            "tz": "UTC",
            "catchup": "latest",
            "paused": False,
            "last_tick": None,
            "next_tick": "2026-03-02T09:30:00Z",
        },
    }
    triggers = by_name(greet["triggers"])
    assert triggers["hook"]["kind"] == "webhook" and triggers["hook"]["paused"] is False
    assert triggers["after-flaky"]["kind"] == "upstream"
    assert triggers["after-flaky"]["detail"] == {"upstream": "flaky"}
    assert "token" not in str(triggers["hook"])  # the webhook's secret is not listed
    flaky = by_name(pipes)["flaky"]
    assert flaky["next_run"] is None and flaky["schedules"] == [] and flaky["paused"] is False
    assert by_name(pipes)["days"]["partitioned"] is True
    assert flaky["partitioned"] is False


def test_list_shows_the_last_run_and_recent_runs(api: Api) -> None:
    first = api.run("flaky")
    api.clock.advance(60)
    queued = api.launch("flaky", params={"n": 2})
    pipes = by_name(api.get("/pipelines").json())
    flaky = pipes["flaky"]
    assert flaky["last_run"]["id"] == queued["id"]
    assert flaky["last_run"]["state"] == "queued"
    assert [(r["id"], r["state"]) for r in flaky["recent_runs"]] == [
        (queued["id"], "queued"),
        (first["run"]["id"], "failed"),
    ]
    assert pipes["greet"]["last_run"] is None


def test_pausing_every_schedule_pauses_the_pipeline(api: Api) -> None:
    r = api.post("/pipelines/greet/schedules/pause")
    assert r.status_code == 200
    assert r.json() == {"pipeline": "greet", "name": None, "paused": True}
    greet = by_name(api.get("/pipelines").json())["greet"]
    assert greet["paused"] is True
    assert greet["next_run"] is None
    assert all(s["paused"] and s["next_tick"] is None for s in greet["schedules"])
    r = api.post("/pipelines/greet/schedules/unpause")
    assert r.json() == {"pipeline": "greet", "name": None, "paused": False}
    greet = by_name(api.get("/pipelines").json())["greet"]
    assert greet["paused"] is False and greet["next_run"] == "2026-03-02T09:30:00Z"


def test_pausing_one_schedule(api: Api) -> None:
    r = api.post("/pipelines/greet/schedules/hourly/pause")
    assert r.status_code == 200
    assert r.json() == {"pipeline": "greet", "name": "hourly", "paused": True}
    greet = api.get("/pipelines/greet").json()
    assert greet["paused"] is False  # the nightly one still runs
    assert greet["next_run"] == "2026-03-03T03:00:00Z"
    assert {s["name"]: s["paused"] for s in greet["schedules"]} == {
        "nightly": False,
        "hourly": True,
    }
    r = api.post("/pipelines/greet/schedules/hourly/unpause")
    assert r.json()["paused"] is False
    assert api.get("/pipelines/greet").json()["next_run"] == "2026-03-02T09:30:00Z"


def test_pausing_unknown_schedules_is_404(api: Api) -> None:
    for path in (
        "/pipelines/greet/schedules/weekly/pause",
        "/pipelines/greet/schedules/weekly/unpause",
        "/pipelines/flaky/schedules/pause",  # it has no schedule at all
        "/pipelines/nope/schedules/pause",
        "/pipelines/nope/schedules/nightly/pause",
    ):
        r = api.post(path)
        assert r.status_code == 404, path
        assert r.json()["error"]


def test_pausing_triggers(api: Api) -> None:
    r = api.post("/pipelines/greet/triggers/hook/pause")
    assert r.status_code == 200
    assert r.json() == {"pipeline": "greet", "name": "hook", "paused": True}
    triggers = by_name(api.get("/pipelines/greet").json()["triggers"])
    assert triggers["hook"]["paused"] is True
    assert triggers["after-flaky"]["paused"] is False
    assert api.post("/pipelines/greet/triggers/hook/unpause").json()["paused"] is False
    triggers = by_name(api.get("/pipelines").json()[2]["triggers"])
    assert triggers["hook"]["paused"] is False
    for path in (
        "/pipelines/greet/triggers/nope/pause",
        "/pipelines/greet/triggers/nope/unpause",
        "/pipelines/flaky/triggers/hook/pause",
        "/pipelines/nope/triggers/hook/pause",
    ):
        assert api.post(path).status_code == 404, path


def test_detail_has_the_graph_and_params(api: Api) -> None:
    r = api.get("/pipelines/greet")
    assert r.status_code == 200
    d = r.json()
    assert d["name"] == "greet"
    assert d["file"].endswith("flows.py") and d["line"] > 0
    nodes = {n["id"]: n for n in d["nodes"]}
    assert set(nodes) == {"hello", "after"}
    assert nodes["hello"]["upstream"] == [] and nodes["after"]["upstream"] == ["hello"]
    assert nodes["after"]["task"] == "after" and nodes["after"]["mapped"] is False
    params = {p["name"]: p for p in d["params"]}
    assert list(params) == ["n", "label", "ratio"]
    assert params["n"]["type"] == "int" and params["n"]["default"] == 1
    assert params["n"]["required"] is False
    assert params["n"]["json_schema"] == {"type": "integer"}
    assert params["label"]["json_schema"] == {"type": "string"}
    assert params["ratio"]["default"] is None
    assert params["ratio"]["json_schema"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert d["partitions_spec"] is None
    assert d["partitions_url"] is None and d["partitions_summary_url"] is None
    assert d["max_active_runs"] is None and d["priority"] == 0
    assert len(d["schedules"]) == 2 and d["next_run"] == "2026-03-02T09:30:00Z"
    flaky = api.get("/pipelines/flaky").json()
    assert {n["id"]: n["upstream"] for n in flaky["nodes"]} == {
        "hello": [],
        "boom": ["hello"],
        "after": ["boom"],
    }


def test_detail_points_to_the_paged_partitions_instead_of_listing_them(api: Api) -> None:
    d = api.get("/pipelines/days").json()
    assert d["partitions_spec"]["kind"] == "daily"
    assert "partitions" not in d  # 10^5 of them were 7 MB here
    done = api.run("days", partition="2026-02-25")
    assert done["run"]["state"] == "succeeded"
    api.clock.advance(60)
    queued = api.launch("days", partition="2026-02-27")
    d = api.get("/pipelines/days").json()
    assert d["partitions_url"] == "/api/v1/pipelines/days/partitions"
    assert d["partitions_summary_url"] == "/api/v1/pipelines/days/partitions/summary"
    listed = api.get(d["partitions_url"].removeprefix("/api/v1")).json()["partitions"]
    states = {p["key"]: (p["state"], p["run_id"]) for p in listed}
    assert list(states) == DAYS
    assert states["2026-02-25"] == ("succeeded", done["run"]["id"])
    assert states["2026-02-27"] == ("queued", queued["id"])
    assert states["2026-02-23"] == ("never run", None)
    summary = api.get(d["partitions_summary_url"].removeprefix("/api/v1")).json()
    assert summary["counts"] == {"never run": len(DAYS) - 2, "succeeded": 1, "queued": 1}
    r = api.get("/pipelines/greet/partitions")
    assert r.status_code == 404 and "no partitions" in r.json()["error"]


def test_unknown_pipeline_is_404(api: Api) -> None:
    r = api.get("/pipelines/gret")
    assert r.status_code == 404
    assert r.json()["error"].startswith("no pipeline named 'gret'")
    assert "did you mean 'greet'" in r.json()["error"]
    assert api.get("/pipelines/nope/partitions").status_code == 404


def test_partitions_are_paged_filtered_and_summed_up(api: Api) -> None:
    queued = api.launch("days", partition="2026-02-25")
    page = api.get("/pipelines/days/partitions", params={"limit": 3}).json()
    assert [p["key"] for p in page["partitions"]] == DAYS[:3]
    assert (page["total"], page["next_cursor"]) == (7, "2026-02-25")
    rest = api.get("/pipelines/days/partitions", params={"cursor": "2026-02-25"}).json()
    assert [p["key"] for p in rest["partitions"]] == DAYS[3:]
    assert rest["next_cursor"] is None
    only = api.get(
        "/pipelines/days/partitions", params={"state": "queued", "from": "2026-02-24"}
    ).json()
    assert only == {
        "partitions": [{"key": "2026-02-25", "state": "queued", "run_id": queued["id"]}],
        "total": 1,
        "next_cursor": None,
    }
    missing = api.get(
        "/pipelines/days/partitions", params={"state": "missing", "to": "2026-02-26"}
    ).json()
    assert [p["key"] for p in missing["partitions"]] == ["2026-02-23", "2026-02-24", "2026-02-26"]
    s = api.get("/pipelines/days/partitions/summary", params={"granularity": "month"}).json()
    assert s["counts"] == {"queued": 1, "never run": 6}
    assert s["missing"] == [
        {"first": "2026-02-23", "last": "2026-02-24", "count": 2},
        {"first": "2026-02-26", "last": "2026-03-01", "count": 4},
    ]
    assert [(b["label"], b["counts"]) for b in s["buckets"]] == [
        ("2026-02", {"never run": 5, "queued": 1}), ("2026-03", {"never run": 1}),
    ]
    assert (s["missing_ranges"], s["failed_ranges"]) == (2, 0)
    newest = api.get("/pipelines/days/partitions/summary", params={"ranges": 1}).json()
    assert newest["missing"] == [{"first": "2026-02-26", "last": "2026-03-01", "count": 4}]
    assert newest["missing_ranges"] == 2
    bad = api.get("/pipelines/days/partitions", params={"state": "broken"})
    assert bad.status_code == 422 and bad.json()["field"] == "state"
    assert api.get("/pipelines/greet/partitions/summary").status_code == 404
