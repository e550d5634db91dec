"""OpenLineage export: a project with ``[lineage]`` sends a START and an end event for each
run and each task, with the assets they read and make, to a real local HTTP server (or a
file); a failure is told with its error; a server error is retried; two senders never send
one event twice. The clock is injected: retries come due by moving it, not by waiting."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.services.door import Door
from legato.services.workspace import Workspace
from tests.helpers import door, make_project
from tests.observability.conftest import Receiver

CODE = """
from legato import pipeline, task
from legato.partitions import daily

@task(in_process=True, consumes="shop.orders", produces="staging.orders")
def extract(ctx) -> list[int]:
    if ctx.params.get("fail"):
        raise ValueError("the shop database is away")
    return [1, 2, 3]

@task(in_process=True, produces="warehouse.daily_sales")
def load(rows: list[int]) -> int:
    return sum(rows)

@pipeline(partitions=daily(start="2026-12-01", tz="UTC"))
def nightly(fail: bool = False):
    load(extract())
"""

START = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
#: What a run that succeeds sends, in order: (event type, job).
SUCCEEDED = [
    ("START", "nightly"),
    ("START", "nightly.extract"),
    ("COMPLETE", "nightly.extract"),
    ("START", "nightly.load"),
    ("COMPLETE", "nightly.load"),
    ("COMPLETE", "nightly"),
]


def project(tmp_path: Path, lineage: str, store_url: str | None = None) -> Path:
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    return make_project(tmp_path / "shop", CODE, extra=f"{store}[lineage]\n{lineage}")


def http(receiver: Receiver, extra: str = "") -> str:
    return f'transport = "http"\nurl = "{receiver.url}"\nendpoint = "/api/v1/lineage"\n{extra}'


def run(d: Door, *, fail: bool = False) -> Any:
    made = d.runs.create_run("nightly", {"fail": fail}, partition="2026-12-05")
    return d.runs.execute(made.id)


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["eventType"], e["job"]["name"]) for e in events]


def test_a_run_sends_start_and_complete_with_its_assets_to_an_http_server(
    tmp_path: Path, receiver: Receiver
) -> None:
    with Workspace(project(tmp_path, http(receiver)), clock=ManualClock(START)) as ws:
        done = run(door(ws))
        assert done.state == RunState.SUCCEEDED
        got = receiver.bodies()
    assert kinds(got) == SUCCEEDED
    first, *_, last = got
    assert first["job"]["namespace"] == "shop"  # the project's name by default
    run_id = first["run"]["runId"]
    assert last["run"]["runId"] == run_id
    assert [d["name"] for d in last["inputs"]] == ["shop.orders"]
    assert [d["name"] for d in last["outputs"]] == ["staging.orders", "warehouse.daily_sales"]
    facets = last["run"]["facets"]
    assert facets["legato"]["runId"] == done.id
    assert facets["legato"]["partition"] == "2026-12-05"
    assert facets["legato"]["params"] == {"fail": False}
    assert facets["nominalTime"] == {
        **facets["nominalTime"],
        "nominalStartTime": "2026-12-05T00:00:00.000Z",
        "nominalEndTime": "2026-12-06T00:00:00.000Z",
    }
    load = next(e for e in got if e["job"]["name"] == "nightly.load")
    # A task reads what its upstream tasks make: the graph joins up across the jobs.
    assert [d["name"] for d in load["inputs"]] == ["staging.orders"]
    assert [d["name"] for d in load["outputs"]] == ["warehouse.daily_sales"]
    assert load["run"]["facets"]["parent"]["run"]["runId"] == run_id
    assert load["run"]["facets"]["parent"]["job"] == {
        **load["run"]["facets"]["parent"]["job"], "namespace": "shop", "name": "nightly"
    }


def test_a_failed_run_sends_fail_with_its_error(tmp_path: Path, receiver: Receiver) -> None:
    with Workspace(project(tmp_path, http(receiver)), clock=ManualClock(START)) as ws:
        assert run(door(ws), fail=True).state == RunState.FAILED
    got = receiver.bodies()
    assert ("FAIL", "nightly.extract") in kinds(got)
    assert kinds(got)[-1] == ("FAIL", "nightly")
    assert ("START", "nightly.load") not in kinds(got)  # it never ran
    failed = next(e for e in got if e["job"]["name"] == "nightly.extract"
                  and e["eventType"] == "FAIL")
    error = failed["run"]["facets"]["errorMessage"]
    assert "the shop database is away" in error["message"]
    assert error["programmingLanguage"] == "python"


def test_the_file_transport_appends_one_event_per_line(tmp_path: Path) -> None:
    settings = 'transport = "file"\npath = "lineage/events.jsonl"\nnamespace = "retail"\n'
    root = project(tmp_path, settings)
    with Workspace(root, clock=ManualClock(START)) as ws:
        run(door(ws))
        run(door(ws))
    lines = (root / "lineage" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 12
    assert {e["job"]["namespace"] for e in events} == {"retail"}
    assert len({e["run"]["runId"] for e in events if e["job"]["name"] == "nightly"}) == 2


def test_a_server_error_is_retried_in_order_after_a_backoff(
    tmp_path: Path, receiver: Receiver
) -> None:
    clock = ManualClock(START)
    receiver.status = 500
    with Workspace(project(tmp_path, http(receiver)), clock=clock) as ws:
        d = door(ws)
        done = run(d)
        # The first event failed; the rest of the run's waited behind it, untried.
        assert len(receiver.got) == 1
        events = d.lineage.events(done.id)
        assert events[0].last_error is not None and "500" in events[0].last_error
        assert all(e.state == "pending" for e in events)
        receiver.status = 200
        assert d.lineage.deliver(clock(), "sender") == []  # not due yet
        clock.advance(3)
        sent = d.lineage.deliver(clock(), "sender")
        assert [s.error for s in sent] == [None] * 6
        assert [e.state for e in d.lineage.events(done.id)] == ["sent"] * 6
    assert kinds(receiver.bodies())[1:] == SUCCEEDED


def test_a_refusal_fails_the_event_for_good(tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 400
    with Workspace(project(tmp_path, http(receiver)), clock=ManualClock(START)) as ws:
        d = door(ws)
        done = run(d)
        first = d.lineage.events(done.id)[0]
        assert first.state == "failed" and "400" in (first.last_error or "")


def test_the_api_key_is_read_from_a_secret_and_sent_as_a_bearer_token(
    tmp_path: Path, receiver: Receiver
) -> None:
    extra = 'api_key = "${secret:marquez_key}"\nheaders = { X-Team = "data" }\n'
    with Workspace(project(tmp_path, http(receiver, extra)), clock=ManualClock(START)) as ws:
        d = door(ws)
        d.secrets.set("marquez_key", "s3cret-key")
        run(d)
    headers = receiver.got[0][0]
    assert headers["Authorization"] == "Bearer s3cret-key" and headers["X-Team"] == "data"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_senders_never_send_one_event_twice(
    tmp_path: Path, receiver: Receiver, backend: str, store_url_for: Callable[[str], str]
) -> None:
    clock = ManualClock(START)
    receiver.status = 503  # the runs' events stay in the outbox
    root = project(tmp_path, http(receiver), store_url_for(backend))
    with Workspace(root, clock=clock) as ws:
        d = door(ws)
        for _ in range(4):
            run(d)
    receiver.got.clear()
    receiver.status = 200
    clock.advance(60)
    spaces = [Workspace(root, clock=clock), Workspace(root, clock=clock)]
    try:
        barrier = threading.Barrier(2)

        def send(ws: Workspace, name: str) -> None:
            barrier.wait()
            while door(ws).lineage.deliver(clock(), name, limit=3):
                pass

        threads = [threading.Thread(target=send, args=(ws, f"sender-{i}"))
                   for i, ws in enumerate(spaces)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for ws in spaces:
            ws.close()
    got = receiver.bodies()
    keys = [(e["run"]["runId"], e["eventType"]) for e in got]
    assert len(got) == 24 and len(set(keys)) == 24
    per_run: dict[str, list[str]] = {}
    for e in got:
        if e["job"]["name"] == "nightly":
            per_run.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert all(v == ["START", "COMPLETE"] for v in per_run.values())  # each run's in order


def test_a_mapped_task_is_one_child_run(tmp_path: Path) -> None:
    code = """
from legato import pipeline, task

@task(in_process=True)
def stores() -> list[str]:
    return ["berlin", "paris", "rome"]

@task(in_process=True, produces="reports.store")
def report(store: str) -> str:
    return store

@pipeline
def reports():
    report.map(stores())
"""
    settings = '[lineage]\ntransport = "file"\npath = "l.jsonl"\n'
    root = make_project(tmp_path / "p", code, extra=settings)
    with Workspace(root, clock=ManualClock(START)) as ws:
        d = door(ws)
        d.runs.execute(d.runs.create_run("reports", {}).id)
    events = [json.loads(line) for line in (root / "l.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events if e["job"]["name"] == "reports.report"] == [
        "START", "COMPLETE"
    ]


def test_without_lineage_nothing_is_recorded(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE)
    with Workspace(root, clock=ManualClock(START)) as ws:
        d = door(ws)
        done = run(d)
        assert d.lineage.events(done.id) == []
        assert d.lineage.settings() is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('transport = "kafka"\n', 'transport must be "file" or "http"'),
        ('transport = "http"\n', "needs url"),
        ('transport = "file"\n', "needs path"),
        ('transport = "http"\nurl = "http://x"\ntimeout = 0\n', "timeout must be positive"),
        ('transport = "http"\nurl = "http://x"\ncolour = 1\n', "unknown key 'colour'"),
    ],
)
def test_a_wrong_lineage_table_is_refused(tmp_path: Path, table: str, message: str) -> None:
    from legato.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config(project(tmp_path, table))


def test_the_settings_in_effect_show_lineage_with_its_key_masked(tmp_path: Path) -> None:
    extra = 'api_key = "plain-key-123"\nheaders = { Authorization = "Basic abc" }\n'
    root = project(tmp_path, 'transport = "http"\nurl = "http://marquez:5000"\n' + extra)
    with Workspace(root) as ws:
        shown = door(ws).project.effective_config()["settings"]["lineage"]
    assert shown["url"] == "http://marquez:5000" and shown["namespace"] == "shop"
    assert shown["api_key"] == "****" and shown["headers"] == {"Authorization": "****"}
    assert "plain-key-123" not in json.dumps(shown)


def test_without_the_client_library_a_run_is_refused_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legato.observability import lineage_events
    from legato.services.service_errors import ServiceError

    monkeypatch.setitem(sys.modules, "openlineage.client", None)  # as if not installed
    lineage_events._client.cache_clear()
    try:
        root = project(tmp_path, 'transport = "file"\npath = "l.jsonl"\n')
        with Workspace(root, clock=ManualClock(START)) as ws:
            d = door(ws)
            made = d.runs.create_run("nightly", {}, partition="2026-12-05")
            with pytest.raises(ServiceError, match=r"pip install 'legato\[lineage\]'"):
                d.runs.execute(made.id)
            found = d.runs.find_run(made.id)
            assert found.state == RunState.QUEUED and found.lease_owner is None
    finally:
        lineage_events._client.cache_clear()
