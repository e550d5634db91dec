"""Launching runs, a run's detail after it ran, and the filtered, paged runs list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import CODE, T0, Api


def test_launch_queues_a_run_and_tells_on_run(api: Api) -> None:
    r = api.post("/pipelines/greet/runs", {"params": {"n": 3, "label": "hi"}, "priority": 7})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["pipeline"] == "greet" and run["state"] == "queued"
    assert run["params"] == {"n": 3, "label": "hi", "ratio": None}
    assert run["priority"] == 7 and run["origin"] == "manual"
    assert run["created_at"] == "2026-03-02T09:00:00Z"
    assert run["started_at"] is None and run["parent_run_id"] is None
    assert [x.id for x in api.heard if x is not None] == [run["id"]]
    assert api.get(f"/runs/{run['id']}").json()["run"] == run
    # Without a body, the defaults.
    r = api.post("/pipelines/greet/runs", {})
    assert r.status_code == 201 and r.json()["params"] == {"n": 1, "label": "x", "ratio": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": {"n": "many"}}, "n"),
        ({"params": {"n": [1]}}, "n"),
        ({"params": {"ratio": "high"}}, "ratio"),
        ({"params": {"colour": "red"}}, "colour"),
        ({"params": "n=1"}, "params"),
        ({"priority": 10**9}, "priority"),
        ({"params": {}, "extra": 1}, "extra"),
    ],
)
def test_launch_refuses_bad_input_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = api.post("/pipelines/greet/runs", body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert r.json()["error"]
    assert api.get("/runs").json()["runs"] == []  # nothing was queued


def test_launch_checks_the_partition(api: Api) -> None:
    for bad in ("2026-13-01", "yesterday", "2026-03-02", "2025-01-01"):
        r = api.post("/pipelines/days/runs", {"partition": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["field"] == "partition"
        assert "partition" in r.json()["error"]
    run = api.launch("days", partition="2026-02-24")
    assert run["partition"] == "2026-02-24"


def test_launch_refuses_a_partition_whose_window_is_still_open(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(CODE.replace('end="2026-03-02"', ""))
    for key, opens in (("2026-03-02", "2026-03-03"), ("2027-01-01", "2027-01-02")):
        r = api.post("/pipelines/days/runs", {"partition": key})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "partition"
        assert f"will exist at {opens}T00:00:00+00:00" in r.json()["error"]
    assert api.get("/runs").json()["runs"] == []
    assert api.launch("days", partition="2026-03-01")["partition"] == "2026-03-01"


def test_launch_of_unknown_pipeline_is_404(api: Api) -> None:
    r = api.post("/pipelines/nope/runs", {"params": {}})
    assert r.status_code == 404
    assert "no pipeline named 'nope'" in r.json()["error"]


def test_an_executed_run_shows_tasks_and_attempts(api: Api) -> None:
    run = api.launch("greet", params={"n": 5})
    d = api.execute(run["id"])
    assert d["run"]["state"] == "succeeded"
    assert d["run"]["started_at"] is not None and d["run"]["finished_at"] is not None
    assert d["run"]["error"] is None
    assert [n["id"] for n in d["nodes"]] == ["hello", "after"]
    tasks = {t["task_key"]: t for t in d["tasks"]}
    assert {k: (t["state"], t["attempt"]) for k, t in tasks.items()} == {
        "hello": ("succeeded", 1),
        "after": ("succeeded", 1),
    }
    assert tasks["hello"]["result_format"] is not None
    assert sorted((a["task_key"], a["number"], a["outcome"]) for a in d["attempts"]) == [
        ("after", 1, "succeeded"),
        ("hello", 1, "succeeded"),
    ]
    assert all(a["finished_at"] is not None for a in d["attempts"])
    assert d["counts"] == {"succeeded": 2}
    events = api.get(f"/runs/{run['id']}/events").json()
    assert d["last_event_id"] == events[-1]["id"]
    assert [e["new_state"] for e in events if e["kind"] == "run_state"] == [
        "running",
        "succeeded",
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    later = api.get(f"/runs/{run['id']}/events", params={"after": events[2]["id"], "limit": 2})
    assert later.json() == events[3:5]


def test_a_failed_run_shows_the_failure(api: Api) -> None:
    d = api.run("flaky")
    assert d["run"]["state"] == "failed"
    assert "boom" in d["run"]["error"]
    tasks = {t["task_key"]: t for t in d["tasks"]}
    assert tasks["boom"]["state"] == "failed" and tasks["boom"]["error"] == "ValueError: boom"
    assert tasks["after"]["state"] == "upstream_failed"
    failed = next(a for a in d["attempts"] if a["task_key"] == "boom")
    assert failed["outcome"] == "failed"
    assert 'raise ValueError("boom")' in failed["traceback"]
    assert d["counts"] == {"succeeded": 1, "failed": 1, "upstream_failed": 1}


def test_unknown_run_is_404(api: Api) -> None:
    for path in ("/runs/0123456789abcdef0123", "/runs/nope/events", "/runs/x/events/stream"):
        r = api.get(path)
        assert r.status_code == 404, path
        assert "no run" in r.json()["error"]


# -- the list ---------------------------------------------------------------------------------


def make_runs(api: Api) -> list[dict[str, Any]]:
    """Seven runs a minute apart, oldest first: states and partitions of every kind."""
    made: list[dict[str, Any]] = []

    def add(run: dict[str, Any]) -> None:
        made.append(run)
        api.clock.advance(60)

    add(api.run("flaky")["run"])  # 09:00 failed
    add(api.launch("greet"))  # 09:01 queued
    add(api.run("greet")["run"])  # 09:02 succeeded
    add(api.launch("days", partition="2026-02-24"))  # 09:03 queued
    run = api.launch("days", partition="2026-02-25")  # 09:04 canceled
    add(api.post(f"/runs/{run['id']}/cancel").json())
    add(api.run("days", partition="2026-02-24")["run"])  # 09:05 succeeded
    add(api.launch("flaky"))  # 09:06 queued
    return made


def ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["runs"]]


def test_list_is_newest_first_and_filters(api: Api) -> None:
    made = make_runs(api)
    newest_first = [r["id"] for r in reversed(made)]
    assert ids(api.get("/runs")) == newest_first
    assert api.get("/runs").json()["next_cursor"] is None

    def where(**f: Any) -> list[str]:
        return ids(api.get("/runs", params=f))

    def expect(pred: Any) -> list[str]:
        return [r["id"] for r in reversed(made) if pred(r)]

    assert where(pipeline="days") == expect(lambda r: r["pipeline"] == "days")
    assert where(pipeline="nope") == []
    assert where(state="queued") == expect(lambda r: r["state"] == "queued")
    assert where(state=["failed", "canceled"]) == expect(
        lambda r: r["state"] in ("failed", "canceled")
    )
    assert where(pipeline="greet", state="queued") == [made[1]["id"]]
    assert where(partition="2026-02-24") == [made[5]["id"], made[3]["id"]]
    # created_after is inclusive, created_before exclusive; a time without offset is UTC.
    assert where(created_after="2026-03-02T09:04:00Z") == newest_first[:3]
    assert where(created_before="2026-03-02T09:02:00+00:00") == newest_first[-2:]
    assert where(
        created_after="2026-03-02T10:01:00+01:00", created_before="2026-03-02T09:03:00"
    ) == [made[2]["id"], made[1]["id"]]
    assert where(created_after=(T0.replace(hour=10)).isoformat()) == []


def test_list_pages_with_a_cursor(api: Api) -> None:
    made = make_runs(api)
    seen: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.get("/runs", params=params).json()
        seen.append([r["id"] for r in page["runs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == seen[-1][-1]
    assert [len(p) for p in seen] == [3, 3, 1]
    flat = [i for p in seen for i in p]
    assert len(set(flat)) == len(flat)  # disjoint
    assert flat == [r["id"] for r in reversed(made)]  # complete, newest first
    # A page that ends exactly at the last run has no next page.
    page = api.get("/runs", params={"limit": 7}).json()
    assert len(page["runs"]) == 7 and page["next_cursor"] is None
    page = api.get("/runs", params={"limit": 6}).json()
    assert page["next_cursor"] == made[1]["id"]
    # Filters hold on every page.
    first = api.get("/runs", params={"state": "queued", "limit": 2}).json()
    rest = api.get(
        "/runs", params={"state": "queued", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [r["id"] for r in first["runs"] + rest["runs"]] == [
        made[6]["id"],
        made[3]["id"],
        made[1]["id"],
    ]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"state": "sleeping"}, "state"),
        ({"created_after": "last tuesday"}, "created_after"),
        ({"cursor": "x" * 65}, "cursor"),
    ],
)
def test_list_refuses_bad_filters(api: Api, params: dict[str, Any], field: str) -> None:
    r = api.get("/runs", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert api.get("/runs", params={"limit": 500}).status_code == 200
