"""Actions on runs: cancel, re-run (from failure or from a task), and marking tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api


def states(detail: dict[str, Any]) -> dict[str, str]:
    return {t["task_key"]: t["state"] for t in detail["tasks"]}


def test_cancel_a_queued_run(api: Api) -> None:
    run = api.launch("greet")
    r = api.post(f"/runs/{run['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "canceled" and r.json()["cancel_requested"] is True
    d = api.get(f"/runs/{run['id']}").json()
    assert d["run"]["state"] == "canceled"
    assert set(states(d).values()) == {"canceled"}
    assert api.get("/queue").json() == []
    again = api.post(f"/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert "already finished" in again.json()["error"]


def test_cancel_a_finished_run_is_409(api: Api) -> None:
    rid = api.run("greet")["run"]["id"]
    r = api.post(f"/runs/{rid}/cancel")
    assert r.status_code == 409
    assert r.json()["error"] == f"run {rid} has already finished (succeeded)"
    assert api.get(f"/runs/{rid}").json()["run"]["state"] == "succeeded"
    assert api.post("/runs/nope/cancel").status_code == 404


def test_rerun_from_failure(api: Api) -> None:
    failed = api.run("flaky", params={"n": 6})["run"]
    api.heard.clear()
    api.clock.advance(60)
    r = api.post(f"/runs/{failed['id']}/rerun")
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["id"] != failed["id"] and new["state"] == "queued"
    assert new["parent_run_id"] == failed["id"]
    assert new["rerun_kind"] == "from_failure"
    assert new["params"] == {"n": 6}
    assert [x.id for x in api.heard if x is not None] == [new["id"]]
    d = api.get(f"/runs/{new['id']}").json()
    hello = next(t for t in d["tasks"] if t["task_key"] == "hello")
    assert hello["state"] == "succeeded" and hello["reused_from"] == failed["id"]
    assert states(d)["boom"] == "pending" and states(d)["after"] == "pending"
    # An empty body means the same.
    assert api.post(f"/runs/{failed['id']}/rerun", {}).json()["rerun_kind"] == "from_failure"
    done = api.execute(new["id"])
    assert done["run"]["state"] == "failed"  # boom still fails; hello was not run again
    assert [a["task_key"] for a in done["attempts"]] == ["boom"]


def test_rerun_a_task_and_its_downstream(api: Api) -> None:
    ok = api.run("greet", params={"n": 2})["run"]
    r = api.post(f"/runs/{ok['id']}/rerun", {"task": "after"})
    assert r.status_code == 201, r.text
    assert r.json()["rerun_kind"] == "task" and r.json()["parent_run_id"] == ok["id"]
    d = api.execute(r.json()["id"])
    assert d["run"]["state"] == "succeeded"
    assert [a["task_key"] for a in d["attempts"]] == ["after"]
    # From failure, a run that succeeded has nothing to re-run.
    r = api.post(f"/runs/{ok['id']}/rerun")
    assert r.status_code == 409 and "no failed task" in r.json()["error"]
    # A task downstream of one that failed cannot be re-run on its own.
    failed = api.run("flaky")["run"]
    r = api.post(f"/runs/{failed['id']}/rerun", {"task": "after"})
    assert r.status_code == 409 and "'boom' has no result" in r.json()["error"]
    r = api.post(f"/runs/{failed['id']}/rerun", {"task": "hello"})
    assert r.status_code == 201 and r.json()["rerun_kind"] == "task"


def test_rerun_refusals(api: Api) -> None:
    queued = api.launch("greet")
    r = api.post(f"/runs/{queued['id']}/rerun")
    assert r.status_code == 409
    assert r.json()["error"] == (f"run {queued['id']} is queued; re-run it once it has finished")
    failed = api.run("flaky")["run"]
    r = api.post(f"/runs/{failed['id']}/rerun", {"task": "nope"})
    assert r.status_code == 404 and "has no task 'nope'" in r.json()["error"]
    r = api.post(f"/runs/{failed['id']}/rerun", {"task": "boom", "from": "x"})
    assert r.status_code == 422 and r.json()["field"] == "from"
    assert api.post("/runs/nope/rerun").status_code == 404


def test_mark_tasks_until_the_run_succeeds(api: Api) -> None:
    d = api.run("flaky")
    rid = d["run"]["id"]
    before = d["last_event_id"]
    r = api.post(f"/runs/{rid}/tasks/boom/mark", {"state": "succeeded"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "failed"  # "after" is still upstream_failed
    r = api.post(f"/runs/{rid}/tasks/after/mark", {"state": "succeeded"})
    assert r.status_code == 200
    assert r.json()["state"] == "succeeded" and r.json()["error"] is None
    d = api.get(f"/runs/{rid}").json()
    assert states(d) == {"hello": "succeeded", "boom": "succeeded", "after": "succeeded"}
    assert d["run"]["state"] == "succeeded"
    events = api.get(f"/runs/{rid}/events", params={"after": before}).json()
    assert [(e["task_key"], e["kind"], e["old_state"], e["new_state"]) for e in events] == [
        ("boom", "task_state", "failed", "succeeded"),
        ("after", "task_state", "upstream_failed", "succeeded"),
        (None, "run_state", "failed", "succeeded"),
    ]
    assert all("marked succeeded" in (e["message"] or "") for e in events)
    # And back: marking a task failed fails the run again.
    r = api.post(f"/runs/{rid}/tasks/hello/mark", {"state": "failed"})
    assert r.status_code == 200 and r.json()["state"] == "failed"
    assert api.get("/runs", params={"state": "failed"}).json()["runs"][0]["id"] == rid


def test_mark_refusals(api: Api) -> None:
    queued = api.launch("greet")
    r = api.post(f"/runs/{queued['id']}/tasks/hello/mark", {"state": "succeeded"})
    assert r.status_code == 409
    assert "once it has finished" in r.json()["error"]
    rid = api.run("flaky")["run"]["id"]
    r = api.post(f"/runs/{rid}/tasks/hello/mark", {"state": "succeeded"})
    assert r.status_code == 409 and "already" in r.json()["error"]
    r = api.post(f"/runs/{rid}/tasks/nope/mark", {"state": "succeeded"})
    assert r.status_code == 404 and "no task 'nope'" in r.json()["error"]
    r = api.post(f"/runs/{rid}/tasks/boom/mark", {"state": "running"})
    assert r.status_code == 422 and r.json()["field"] == "state"
    r = api.post(f"/runs/{rid}/tasks/boom/mark", {})
    assert r.status_code == 422 and r.json()["field"] == "state"
    r = api.post("/runs/nope/tasks/boom/mark", {"state": "failed"})
    assert r.status_code == 404
    assert api.get(f"/runs/{rid}").json()["run"]["state"] == "failed"  # nothing changed


def test_mark_a_mapped_task_is_409(make_api: Callable[..., Api]) -> None:
    api = make_api("""
from legato import pipeline, task

@task
def items() -> list[int]:
    return [1, 2]

@task
def bad(x: int) -> int:
    raise ValueError(x)

@pipeline
def fan():
    bad.map(items())
""")
    d = api.run("fan")
    assert d["run"]["state"] == "failed"
    mapped = [t["task_key"] for t in d["tasks"] if t["map_index"] is not None]
    assert mapped == ["bad[0]", "bad[1]"]
    for key in ["bad", *mapped]:
        r = api.post(f"/runs/{d['run']['id']}/tasks/{key}/mark", {"state": "succeeded"})
        assert r.status_code == 409, key
        assert "mapped" in r.json()["error"]
