"""A run while it runs: refused actions, its live log and event stream, canceling it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from tests.api.conftest import Api, sse
from tests.helpers import door, wait_for

pytestmark = pytest.mark.timeout(90)

GATED = """
import time
from pathlib import Path
from legato import pipeline, task

HERE = Path(__file__).parent

@task
def gate() -> int:
    print("waiting for the gate", flush=True)
    deadline = time.monotonic() + 60
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print("through", flush=True)
    return 1

@task
def after(x: int) -> int:
    return x + 1

@pipeline
def gated():
    after(gate())
"""


class Driver:
    """``door(ws).runs.execute(run_id)`` in a thread, as a daemon would drive the run."""

    def __init__(self, api: Api, run_id: str) -> None:
        api.ws.executor()  # workers start from the main thread
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._drive, args=(api, run_id), daemon=True)
        self.thread.start()

    def _drive(self, api: Api, run_id: str) -> None:
        try:
            door(api.ws).runs.execute(run_id)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the run did not end"
        assert self.error is None, self.error


@pytest.fixture
def running(make_api: Callable[..., Api]) -> Iterator[tuple[Api, str, Driver]]:
    """A run of ``gated`` whose first task is running, held at the gate."""
    api = make_api(GATED)
    rid = api.launch("gated")["id"]
    driver = Driver(api, rid)

    def at_gate() -> bool:
        d = api.get(f"/runs/{rid}").json()
        gate = next(t for t in d["tasks"] if t["task_key"] == "gate")
        log = api.get(f"/runs/{rid}/tasks/gate/attempts/1/log")
        return gate["state"] == "running" and "waiting for the gate" in log.text

    wait_for(at_gate, timeout=30, what="the gate task running")
    yield api, rid, driver
    (api.root / "go").touch()
    driver.thread.join(60)


def test_actions_on_a_running_run_are_refused(running: tuple[Api, str, Driver]) -> None:
    api, rid, driver = running
    d = api.get(f"/runs/{rid}").json()
    assert d["run"]["state"] == "running" and d["counts"] == {"running": 1, "pending": 1}
    live = [a for a in d["attempts"] if a["outcome"] == "running"]
    assert [(a["task_key"], a["number"], a["finished_at"]) for a in live] == [("gate", 1, None)]
    r = api.post(f"/runs/{rid}/rerun")
    assert r.status_code == 409
    assert r.json()["error"] == f"run {rid} is running; re-run it once it has finished"
    r = api.post(f"/runs/{rid}/tasks/gate/mark", {"state": "succeeded"})
    assert r.status_code == 409
    r = api.post(f"/queue/{rid}/move", {"to": "top"})
    assert r.status_code == 409
    assert api.get("/queue").json() == []
    assert api.get("/runs", params={"state": "running"}).json()["runs"][0]["id"] == rid
    (api.root / "go").touch()
    driver.join()
    assert api.get(f"/runs/{rid}").json()["run"]["state"] == "succeeded"


def read_until(lines: Iterator[str], seen: list[str], text: str) -> None:
    """Read server-sent lines into ``seen`` until one holds ``text``."""
    for line in lines:
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"the stream ended before {text!r}")


def test_streams_follow_a_live_run(running: tuple[Api, str, Driver]) -> None:
    api, rid, driver = running
    events: list[str] = []
    log: list[str] = []
    with (
        api.client.stream("GET", f"/api/v1/runs/{rid}/events/stream") as ev,
        api.client.stream("GET", f"/api/v1/runs/{rid}/tasks/gate/attempts/1/log/stream") as lg,
    ):
        assert ev.status_code == lg.status_code == 200
        ev_lines, lg_lines = ev.iter_lines(), lg.iter_lines()
        # What happened so far comes at once, while the task still waits at the gate...
        read_until(ev_lines, events, '"new_state":"running"')
        read_until(lg_lines, log, "waiting for the gate")
        assert not any("event: end" in line for line in events + log)
        (api.root / "go").touch()
        # ... and the rest as it happens, until the end.
        events.extend(ev_lines)
        log.extend(lg_lines)
    driver.join()
    got = sse("\n".join(events))
    assert got[-1]["event"] == "end" and got[-1]["data"] == {"state": "succeeded"}
    assert [e["data"] for e in got[:-1]] == api.get(f"/runs/{rid}/events").json()
    logged = sse("\n".join(log))
    assert logged[-1] == {"event": "end", "id": None, "data": {"attempt": 1}}
    text = "".join(e["data"]["text"] for e in logged[:-1])
    assert text == "waiting for the gate\nthrough\n"


def test_cancel_a_running_run(running: tuple[Api, str, Driver]) -> None:
    api, rid, driver = running
    r = api.post(f"/runs/{rid}/cancel")
    assert r.status_code == 200
    assert r.json()["cancel_requested"] is True
    assert r.json()["state"] == "running"  # its driver stops it...
    api.clock.advance(5)  # ... when it next looks, a second later by its (manual) clock
    driver.join()
    d = api.get(f"/runs/{rid}").json()
    assert d["run"]["state"] == "canceled"
    assert {t["task_key"]: t["state"] for t in d["tasks"]} == {
        "gate": "canceled",
        "after": "canceled",
    }
    assert api.post(f"/runs/{rid}/cancel").status_code == 409
