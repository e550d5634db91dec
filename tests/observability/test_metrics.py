"""Each metric moves when its event happens: runs and attempts driven in this process over a
real store and executor, read back from Legato's registry (no Prometheus here: see
tests/e2e/test_prometheus.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.domain.ids import new_run_id
from legato.domain.records import RunRecord
from legato.domain.states import RunState
from legato.engine import plan
from legato.engine.conductor import Conductor
from legato.observability import metrics
from legato.scheduler.listeners import FileListener, make_listener
from legato.services.actor import Actor
from legato.services.driving import Fleet
from legato.services.workspace import Workspace
from tests.engine.test_conductor import drive_all, driver_for, queue_run
from tests.helpers import door, make_project

CODE = """
import time
from pathlib import Path
from legato import pipeline, task
from legato.triggers import on_file, webhook

@task(retries=1, retry_delay=0)
def wobble() -> int:
    raise ValueError("always")

@pipeline
def shaky():
    wobble()

@task(timeout=0.5)
def dawdle() -> None:
    time.sleep(60)

@pipeline
def late():
    dawdle()

@task
def hold(gate: str) -> int:
    while not Path(gate).exists():  # the test opens the gate once it has looked
        time.sleep(0.01)
    return 1

@pipeline
def held(gate: str):
    hold(gate)

@task(in_process=True)
def take(path: str) -> str:
    return path

@pipeline(triggers=[on_file("inbox/*.csv", every="1h")])
def arrivals(path: str):
    take(path)

@pipeline(triggers=[webhook("hook")])
def called():
    take("x")

@pipeline
def looped():
    for i in range(5):
        take(str(i))
"""


def value(name: str, **labels: str) -> float:
    """A sample of the registry now (0 when the series does not exist yet)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def created(pipeline: str) -> float:
    """Runs of ``pipeline`` created in this process, in whatever first state."""
    return sum(
        value("legato_runs_created_total", pipeline=pipeline, state=s)
        for s in ("queued", "running")
    )


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    root = make_project(tmp_path / "proj", CODE, extra="\n[pools]\ndb = 3\n")
    with Workspace(root) as opened:
        yield opened


@pytest.fixture
def process_named() -> Iterator[None]:
    before = metrics.process_labels()
    yield
    metrics.set_process(role=before["role"], process=before["process"])


def test_a_failing_task_counts_a_retry_a_failure_their_durations_and_the_run(
    ws: Workspace,
) -> None:
    attempts = "legato_task_attempts_total"
    before = {
        "retried": value(attempts, pipeline="shaky", outcome="retried"),
        "failed": value(attempts, pipeline="shaky", outcome="failed"),
        "runs": value("legato_runs_finished_total", pipeline="shaky", state="failed"),
        "timed": value("legato_task_attempt_duration_seconds_count", pipeline="shaky",
                       task="wobble"),
        "created": value("legato_runs_created_total", pipeline="shaky", state="running"),
    }
    run = door(ws).runs.run_pipeline("shaky")
    assert run.state == RunState.FAILED
    assert value(attempts, pipeline="shaky", outcome="retried") == before["retried"] + 1
    assert value(attempts, pipeline="shaky", outcome="failed") == before["failed"] + 1
    assert value("legato_runs_finished_total", pipeline="shaky", state="failed") == (
        before["runs"] + 1
    )
    count = value("legato_task_attempt_duration_seconds_count", pipeline="shaky", task="wobble")
    assert count == before["timed"] + 2
    assert created("shaky") == before["created"] + 1


def test_every_call_of_a_task_shares_its_duration_series(ws: Workspace) -> None:
    series = "legato_task_attempt_duration_seconds_count"
    before = value(series, pipeline="looped", task="take")
    assert door(ws).runs.run_pipeline("looped").state == RunState.SUCCEEDED
    assert value(series, pipeline="looped", task="take") == before + 5
    # The nodes of the other calls (take_2 ...) have no series of their own.
    names = {
        s.labels.get("task")
        for m in metrics.REGISTRY.collect()
        for s in m.samples
        if s.labels.get("pipeline") == "looped"
    }
    assert names == {"take", None}


def test_an_attempt_past_its_timeout_counts_as_timed_out(ws: Workspace) -> None:
    before = value("legato_task_attempts_total", pipeline="late", outcome="timed_out")
    assert door(ws).runs.run_pipeline("late").state == RunState.FAILED
    after = value("legato_task_attempts_total", pipeline="late", outcome="timed_out")
    assert after == before + 1
    took = value("legato_task_attempt_duration_seconds_sum", pipeline="late", task="dawdle")
    assert took >= 0.5


def test_busy_workers_and_driven_runs_follow_the_conductor(ws: Workspace, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run = queue_run(ws, "held", gate=str(gate))
    conductor = Conductor(ws.executor())
    conductor.add(driver_for(ws, run))
    busy = "legato_executor_workers_busy"
    deadline = time.monotonic() + 60
    while value(busy) != 1.0:  # the attempt starts in the first step or two
        assert time.monotonic() < deadline, "the attempt never counted as busy"
        conductor.step(0.05)
    assert value("legato_runs_driven") == 1.0
    assert value("legato_executor_workers_free") == 1.0  # of two workers
    gate.touch()
    drive_all(conductor)
    assert value(busy) == 0.0
    assert value("legato_runs_driven") == 0.0
    assert value("legato_executor_workers_free") == 2.0


def test_a_run_taken_from_a_dead_driver_counts_as_a_lease_taken_over(ws: Workspace) -> None:
    pipe = ws.pipeline("shaky")
    now = ws.clock()
    dead = f"{os.uname().nodename}:999999999:0:dead"  # this host, a pid that cannot exist
    run = RunRecord(
        id=new_run_id(now),
        pipeline="shaky",
        state=RunState.RUNNING,
        params={},
        partition=None,
        code_version=pipe.code_version,
        created_at=now,
        started_at=now,
        lease_owner=dead,
        lease_expires_at=now + timedelta(hours=1),
    )
    rows = plan.initial_task_runs(pipe, run.id)
    ws.store.runs.create_run(run, rows, plan.creation_events(rows, now))
    before = value("legato_leases_taken_over_total", pipeline="shaky")
    owner = f"{os.uname().nodename}:{os.getpid()}:0:live"
    fleet = Fleet(ws, Actor.scheduler(owner), owner=owner, max_runs=2)
    fleet.start()
    try:
        fleet.adopt_orphans(now)
        assert run.id in fleet.active
        assert value("legato_leases_taken_over_total", pipeline="shaky") == before + 1
    finally:
        fleet.shutdown()


def test_store_statements_are_timed_by_kind(ws: Workspace) -> None:
    name = "legato_store_statement_duration_seconds_count"
    selects, steps = value(name, operation="select"), value(name, operation="step")
    door(ws).runs.run_pipeline("shaky")
    assert value(name, operation="select") > selects
    assert value(name, operation="step") > steps  # the driver's steps, on the DBAPI cursor


def test_a_new_file_counts_its_lag_from_its_last_change(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE)
    inbox = root / "inbox"
    inbox.mkdir()
    changed = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    new = inbox / "a.csv"
    new.write_text("x\n")
    os.utime(new, (changed.timestamp(), changed.timestamp()))
    seen_at = changed + timedelta(seconds=7)
    with Workspace(root, clock=lambda: seen_at) as ws:
        pipe = ws.pipeline("arrivals")
        listener = make_listener(door(ws).automation, pipe, pipe.automation.triggers[0], print)
        assert isinstance(listener, FileListener)
        labels = {"pipeline": "arrivals", "trigger": "file"}
        count = value("legato_trigger_event_lag_seconds_count", **labels)
        total = value("legato_trigger_event_lag_seconds_sum", **labels)
        from legato.scheduler.sources.files import FileSource

        assert listener.poll(FileSource(str(inbox / "*.csv"))) == 1
        assert value("legato_trigger_event_lag_seconds_count", **labels) == count + 1
        assert value("legato_trigger_event_lag_seconds_sum", **labels) == pytest.approx(total + 7)
        assert listener.poll(FileSource(str(inbox / "*.csv"))) == 0  # seen: no second run
        assert value("legato_trigger_event_lag_seconds_count", **labels) == count + 1


def test_a_webhook_call_counts_its_lag_from_arrival_to_its_run(ws: Workspace) -> None:
    auto = door(ws).automation
    token = auto.webhook_token("called", "hook")
    labels = {"pipeline": "called", "trigger": "hook"}
    count = value("legato_trigger_event_lag_seconds_count", **labels)
    run, new = auto.fire_webhook("called", "hook", token, b"{}", "call-1")
    assert new and value("legato_trigger_event_lag_seconds_count", **labels) == count + 1
    again, new = auto.fire_webhook("called", "hook", token, b"{}", "call-1")
    assert again.id == run.id and not new  # the same call again makes no run: not counted
    assert value("legato_trigger_event_lag_seconds_count", **labels) == count + 1


def test_metrics_are_served_to_a_viewer_with_store_figures_and_the_process_labels(
    ws: Workspace, process_named: None
) -> None:
    from tests.helpers import api_token, signed_client

    metrics.set_process(role="web", process="web-7")
    queued = door(ws).runs.create_run("shaky")
    door(ws).project.apply_pools()  # legato.toml's [pools], as a daemon does at its start
    ws.store.pools.claim_pool_slot("db", queued.id, "wobble", ws.clock())
    client = signed_client(ws, "viewer")
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    own = 'process="web-7",role="web"'
    assert f'legato_runs_queued{{pipeline="shaky",{own}}} 1.0' in text
    assert f'legato_pool_slots_used{{pool="db",{own}}} 1.0' in text
    assert f'legato_pool_slots_free{{pool="db",{own}}} 2.0' in text
    assert "# TYPE legato_task_attempt_duration_seconds histogram" in text
    # Anonymous: 401 (not the sign-in page); a token limited to some pipelines: 403.
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    scoped = door(ws).accounts.create_token("only-late", "viewer", scope=("late",)).token
    refused = client.get("/metrics", headers={"Authorization": f"Bearer {scoped}"})
    assert refused.status_code == 403
    operator = {"Authorization": f"Bearer {api_token(ws, 'operator')}"}
    assert client.get("/metrics", headers=operator).status_code == 200
