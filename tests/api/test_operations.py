"""Backfills, the run queue and health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from legato.domain.records import DaemonRecord
from legato.scheduler.tick import Scheduler
from tests.api.conftest import DAYS, Api
from tests.helpers import door

# -- backfills --------------------------------------------------------------------------------


def backfill(api: Api, **body: Any) -> dict[str, Any]:
    r = api.post("/backfills", {"pipeline": "days", **body})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    api.clock.advance(1)
    return out


def test_backfill_by_keys_and_by_range(api: Api) -> None:
    by_keys = backfill(api, partitions=["2026-02-26", "2026-02-24"], max_concurrent=3)
    assert by_keys["pipeline"] == "days" and by_keys["state"] == "running"
    assert by_keys["keys"] == ["2026-02-26", "2026-02-24"] and by_keys["ranges"] == []
    assert by_keys["total"] == 2 and by_keys["done"] == 0 and by_keys["launched"] == 0
    assert by_keys["max_concurrent"] == 3 and by_keys["runs"] == {}
    assert by_keys["priority"] == -1  # behind the pipeline's own runs
    assert api.heard == [None]  # whoever starts runs is woken
    by_range = backfill(api, start="2026-02-27", end="2026-03-01")
    assert by_range["ranges"] == [{"first": "2026-02-27", "last": "2026-03-01", "count": 3}]
    assert by_range["keys"] == [] and by_range["left_off"] == 0
    # Its keys, a page at a time, only when asked.
    page = api.get(f"/backfills/{by_range['id']}/keys", params={"offset": 1, "limit": 1})
    assert page.json() == {
        "keys": [{"key": "2026-02-28", "state": "not started", "run_id": None}],
        "total": 3,
        "next_offset": 2,
    }
    assert api.get(f"/backfills/{by_range['id']}/keys", params={"limit": 0}).status_code == 422
    assert by_range["total"] == 3 and by_range["max_concurrent"] == 2
    listed = api.get("/backfills").json()
    assert [b["id"] for b in listed] == [by_range["id"], by_keys["id"]]  # newest first
    assert api.get(f"/backfills/{by_keys['id']}").json() == by_keys
    assert api.get("/backfills", params={"pipeline": "greet"}).json() == []
    assert len(api.get("/backfills", params={"pipeline": "days", "active": True}).json()) == 2


def test_backfill_skips_partitions_that_succeeded_unless_all(api: Api) -> None:
    api.run("days", partition="2026-02-24")
    api.clock.advance(1)
    b = backfill(api, start="2026-02-23", end="2026-02-25")
    assert [(x["first"], x["last"]) for x in b["ranges"]] == [
        ("2026-02-23", "2026-02-23"), ("2026-02-25", "2026-02-25"),
    ]
    r = api.post("/backfills", {"pipeline": "days", "partitions": ["2026-02-24"]})
    assert r.status_code == 409 and "nothing to backfill" in r.json()["error"]
    b = backfill(api, partitions=["2026-02-24"], all=True)
    assert b["keys"] == ["2026-02-24"] and b["total"] == 1


def test_backfill_pause_resume_cancel(api: Api) -> None:
    b = backfill(api, partitions=["2026-02-23"])
    url = f"/backfills/{b['id']}"
    r = api.post(url + "/pause")
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert api.get(url).json()["state"] == "paused"
    assert api.post(url + "/resume").json()["state"] == "running"
    assert api.post(url + "/pause").json()["state"] == "paused"
    assert api.post(url + "/cancel").json()["state"] == "canceled"
    assert api.get("/backfills", params={"active": True}).json() == []
    r = api.post(url + "/resume")
    assert r.status_code == 409
    assert "canceled" in r.json()["error"]
    assert api.post(url + "/pause").status_code == 409
    assert api.get(url).json()["state"] == "canceled"


def test_backfill_progress_and_cancel_of_its_runs(api: Api) -> None:
    b = backfill(api, partitions=["2026-02-23", "2026-02-24", "2026-02-25"])
    # What the daemon does: its scheduler launches the backfill's first runs.
    Scheduler(door(api.ws).automation).tick(api.clock())
    runs = api.get("/runs", params={"pipeline": "days"}).json()["runs"]
    assert {r["backfill_id"] for r in runs} == {b["id"]}
    assert sorted(r["partition"] for r in runs) == ["2026-02-23", "2026-02-24"]
    assert all(r["origin"] == f"backfill:{b['id']}" for r in runs)
    first = min(runs, key=lambda r: r["partition"])
    api.execute(first["id"])
    got = api.get(f"/backfills/{b['id']}").json()
    assert got["launched"] == 2 and got["done"] == 1 and got["total"] == 3
    assert got["runs"] == {"succeeded": 1, "queued": 1}
    got = api.post(f"/backfills/{b['id']}/cancel").json()
    assert got["state"] == "canceled"
    assert got["runs"] == {"succeeded": 1, "canceled": 1} and got["done"] == 2
    assert api.get("/queue").json() == []


def test_backfills_made_in_one_millisecond(api: Api) -> None:
    """Backfill ids carry as much randomness as run ids: none collide on a still clock."""
    made = {backfill_now(api)["id"] for _ in range(100)}  # the clock stands still
    assert len(made) == 100


def backfill_now(api: Api) -> dict[str, Any]:
    r = api.post("/backfills", {"pipeline": "days", "partitions": [DAYS[0]], "all": True})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"start": "2026-01-01", "end": "2026-01-05"}, 422, None),  # before the first day
        ({"start": "2026-02-27", "end": "2026-03-09"}, 422, None),  # past the last day
        ({"start": "2026-02-27", "end": "2026-02-24"}, 422, None),  # backwards
        ({"partitions": ["2026-02-30"]}, 422, None),
        ({"partitions": ["2026-03-02"]}, 422, None),  # the day has not ended
        ({"start": "2026-02-27"}, 422, None),
        ({}, 422, None),
        ({"partitions": ["2026-02-24"], "start": "2026-02-24", "end": "2026-02-24"}, 422, None),
        ({"partitions": ["2026-02-24"], "max_concurrent": 0}, 422, "max_concurrent"),
        ({"partitions": ["2026-02-24"], "params": {"x": 1}}, 422, "x"),
        ({"partitions": ["2026-02-24"], "colour": "red"}, 422, "colour"),
        ({"pipeline": "greet", "partitions": ["2026-02-24"]}, 422, None),  # not partitioned
        ({"pipeline": "nope", "partitions": ["2026-02-24"]}, 404, None),
    ],
)
def test_backfill_refusals(api: Api, body: dict[str, Any], status: int, field: str | None) -> None:
    r = api.post("/backfills", {"pipeline": "days", **body})
    assert r.status_code == status, r.text
    assert r.json()["error"]
    if field is not None:
        assert r.json()["field"] == field
    assert api.get("/backfills").json() == []


def test_unknown_backfill_is_404(api: Api) -> None:
    assert api.get("/backfills/bfnope").status_code == 404
    for action in ("pause", "resume", "cancel"):
        r = api.post(f"/backfills/bfnope/{action}")
        assert r.status_code == 404, action
        assert "bfnope" in r.json()["error"]


# -- the queue --------------------------------------------------------------------------------


def test_queue_order_and_moves(api: Api) -> None:
    a = api.launch("greet")
    api.clock.advance(1)
    b = api.launch("flaky")
    api.clock.advance(1)
    c = api.launch("greet", priority=5)
    api.clock.advance(1)
    d = api.launch("days", partition="2026-02-23", priority=-2)

    def order() -> list[str]:
        r = api.get("/queue")
        assert r.status_code == 200
        assert all(x["state"] == "queued" for x in r.json())
        return [x["id"] for x in r.json()]

    # Higher priority first, then first come first served.
    assert order() == [c["id"], a["id"], b["id"], d["id"]]
    r = api.post(f"/queue/{b['id']}/move", {"to": "top"})
    assert r.status_code == 200 and r.json()["id"] == b["id"]
    assert order() == [b["id"], c["id"], a["id"], d["id"]]
    api.post(f"/queue/{c['id']}/move", {"to": "bottom"})
    assert order() == [b["id"], a["id"], d["id"], c["id"]]
    api.post(f"/queue/{d['id']}/move", {"to": "top"})
    assert order() == [d["id"], b["id"], a["id"], c["id"]]
    api.post(f"/runs/{a['id']}/cancel")
    assert order() == [d["id"], b["id"], c["id"]]


def test_queue_move_refusals(api: Api) -> None:
    done = api.run("greet")["run"]
    queued = api.launch("greet")
    r = api.post(f"/queue/{done['id']}/move", {"to": "top"})
    assert r.status_code == 409
    assert "only queued runs can be moved" in r.json()["error"]
    r = api.post(f"/queue/{queued['id']}/move", {"to": "middle"})
    assert r.status_code == 422 and r.json()["field"] == "to"
    assert api.post(f"/queue/{queued['id']}/move", {}).status_code == 422
    assert api.post("/queue/nope/move", {"to": "top"}).status_code == 404
    assert [x["id"] for x in api.get("/queue").json()] == [queued["id"]]


# -- health -----------------------------------------------------------------------------------


def daemon(api: Api, age: float) -> DaemonRecord:
    now = api.clock()
    return DaemonRecord(
        id="d1",
        kind="up",
        host="box",
        pid=4242,
        version="0.1.0",
        url="http://127.0.0.1:8765",
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(seconds=age),
    )


def test_health_without_a_daemon(api: Api) -> None:
    r = api.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "store": "ok",
        "store_error": None,
        "scheduler_alive": False,
        "daemons": [],
        "version": "0.1.0",
    }


def test_health_follows_the_daemon_heartbeat(api: Api) -> None:
    api.ws.store.daemons.beat(daemon(api, 0))
    h = api.get("/health").json()
    assert h["scheduler_alive"] is True and h["status"] == "ok"
    assert [(d["id"], d["kind"], d["pid"]) for d in h["daemons"]] == [("d1", "up", 4242)]
    assert h["daemons"][0]["heartbeat_at"] == "2026-03-02T09:00:00Z"
    api.clock.advance(14.9)
    assert api.get("/health").json()["scheduler_alive"] is True
    api.clock.advance(0.2)  # 15.1 s since the last beat
    h = api.get("/health").json()
    assert h["scheduler_alive"] is False and h["daemons"] == []
    assert h["status"] == "ok"  # the store answers: the API is healthy
    api.ws.store.daemons.beat(daemon(api, 0))
    assert api.get("/health").json()["scheduler_alive"] is True
    api.ws.store.daemons.beat(daemon(api, 16))
    assert api.get("/health").json()["scheduler_alive"] is False
