"""`legato web` on its own beside `legato scheduler`, and the health the API reports of both."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.helpers import Daemons, free_port, http_client, make_project, wait_for

CODE = """
from legato import pipeline, task

@task
def hello(name: str) -> str:
    print("hello", name)
    return name

@pipeline
def greet(name: str = "world"):
    hello(name)
"""


def test_web_alone_queues_runs_that_a_separate_scheduler_starts(
    tmp_path: Path, daemons: Daemons
) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    port = free_port()
    web = daemons.up(project, port=port, command="web")
    web.wait_output("legato web:")
    base = f"http://127.0.0.1:{port}"
    http = http_client(base, project)
    wait_for(lambda: _answers(http), timeout=20, what="legato web answering")
    anonymous = httpx.get(f"{base}/api/v1/health")
    assert anonymous.status_code == 401  # nothing is served without signing in

    health = http.get("/api/v1/health").json()
    assert health["store"] == "ok" and health["scheduler_alive"] is False
    assert "No scheduler is running" in http.get("/").text

    made = http.post("/api/v1/pipelines/greet/runs", json={"params": {"name": "ann"}})
    assert made.status_code == 201
    run_id = made.json()["id"]
    assert http.get(f"/api/v1/runs/{run_id}").json()["run"]["state"] == "queued"

    scheduler = daemons.up(project, command="scheduler")
    scheduler.wait_output("legato scheduler:")

    def state() -> str:
        return str(http.get(f"/api/v1/runs/{run_id}").json()["run"]["state"])

    wait_for(lambda: state() == "succeeded", timeout=30, what="the run to succeed")
    alive = http.get("/api/v1/health").json()
    assert alive["scheduler_alive"] is True
    assert [d["kind"] for d in alive["daemons"]] == ["scheduler"]
    assert alive["daemons"][0]["pid"] == scheduler.pid
    log = http.get(f"/api/v1/runs/{run_id}/tasks/hello/attempts/1/log").text
    assert "hello ann" in log

    # A clean stop removes the scheduler's heartbeat at once.
    assert scheduler.stop(signal.SIGTERM) == 0
    assert http.get("/api/v1/health").json()["scheduler_alive"] is False
    assert web.stop(signal.SIGTERM) == 0
    assert "stopped" in web.output()


def test_up_serves_the_ui_and_reports_itself_alive(tmp_path: Path, daemons: Daemons) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    port = free_port()
    up = daemons.up(project, port=port)
    up.wait_output("web UI at")
    base = f"http://127.0.0.1:{port}"
    http = http_client(base, project)
    health = http.get("/api/v1/health").json()
    assert health["scheduler_alive"] is True
    assert health["daemons"][0]["kind"] == "up"
    assert health["daemons"][0]["url"] == base
    page = http.get("/pipelines/greet")
    assert page.status_code == 200 and 'data-task="hello"' in page.text
    assert http.get("/api/v1/openapi.json").json()["info"]["title"] == "Legato"


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
