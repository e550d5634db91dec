"""An attempt's log, and the server-sent event streams of a finished run and attempt."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.api.conftest import Api, sse

pytestmark = pytest.mark.timeout(60)  # a stream that never ends must not hang the suite


def test_log_of_a_failed_attempt_holds_its_output(api: Api) -> None:
    d = api.run("flaky", params={"n": 4})
    rid = d["run"]["id"]
    r = api.get(f"/runs/{rid}/tasks/boom/attempts/1/log")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "about to fail" in r.text
    assert "ValueError: boom" in r.text
    hello = api.get(f"/runs/{rid}/tasks/hello/attempts/1/log").text
    assert "hello n=4 partition=None" in hello
    for path in (
        f"/runs/{rid}/tasks/boom/attempts/2/log",  # there was one attempt
        f"/runs/{rid}/tasks/after/attempts/1/log",  # it never started
        f"/runs/{rid}/tasks/nope/attempts/1/log",
        "/runs/nope/tasks/boom/attempts/1/log",
        f"/runs/{rid}/tasks/boom/attempts/2/log/stream",
    ):
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]
    assert api.get(f"/runs/{rid}/tasks/boom/attempts/one/log").status_code == 422


def test_event_stream_of_a_finished_run_ends(api: Api) -> None:
    d = api.run("flaky")
    rid = d["run"]["id"]
    r = api.get(f"/runs/{rid}/events/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    got = sse(r.text)
    events = api.get(f"/runs/{rid}/events").json()
    assert [g["event"] for g in got] == ["event"] * len(events) + ["end"]
    assert [g["data"] for g in got[:-1]] == events
    assert [g["id"] for g in got[:-1]] == [str(e["id"]) for e in events]
    assert got[-1]["data"] == {"state": "failed"}
    assert got[-1]["id"] == str(d["last_event_id"])
    # Resuming after an event id (query, or the browser's Last-Event-ID header).
    cut = events[5]["id"]
    for kw in ({"params": {"after": cut}}, {"headers": {"Last-Event-ID": str(cut)}}):
        again = sse(api.get(f"/runs/{rid}/events/stream", **kw).text)
        assert [g["data"] for g in again[:-1]] == events[6:]
        assert again[-1]["event"] == "end"
    # After the last event: only the end.
    tail = sse(api.get(f"/runs/{rid}/events/stream", params={"after": events[-1]["id"]}).text)
    assert [g["event"] for g in tail] == ["end"]


def test_event_stream_of_a_canceled_run_ends(api: Api) -> None:
    run = api.launch("greet")
    assert api.post(f"/runs/{run['id']}/cancel").json()["state"] == "canceled"
    got = sse(api.get(f"/runs/{run['id']}/events/stream").text)
    assert got[-1] == {"event": "end", "id": got[-2]["id"], "data": {"state": "canceled"}}
    assert any(g["data"].get("new_state") == "canceled" for g in got[:-1])


def test_log_stream_of_a_finished_attempt_ends(api: Api) -> None:
    rid = api.run("flaky")["run"]["id"]
    r = api.get(f"/runs/{rid}/tasks/boom/attempts/1/log/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    got = sse(r.text)
    assert got[-1] == {"event": "end", "id": None, "data": {"attempt": 1}}
    assert {g["event"] for g in got[:-1]} == {"log"}
    text = "".join(g["data"]["text"] for g in got[:-1])
    assert text == api.get(f"/runs/{rid}/tasks/boom/attempts/1/log").text
    assert "about to fail" in text


def test_log_stream_sends_a_long_log_in_pieces(make_api: Callable[..., Api]) -> None:
    code = """
from legato import pipeline, task

@task
def chatty() -> None:
    for i in range(20000):
        print(f"line {i:05d} \\u00e9\\u00e8")

@pipeline
def talk():
    chatty()
"""
    api = make_api(code)
    rid = api.run("talk")["run"]["id"]
    whole = api.get(f"/runs/{rid}/tasks/chatty/attempts/1/log").text
    assert whole.count("\n") == 20000 and "line 19999 éè" in whole
    got = sse(api.get(f"/runs/{rid}/tasks/chatty/attempts/1/log/stream").text)
    pieces = [g["data"]["text"] for g in got if g["event"] == "log"]
    assert len(pieces) > 1
    assert "".join(pieces) == whole  # no character split between two messages
    assert got[-1]["event"] == "end"
