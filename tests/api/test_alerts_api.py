"""The alerts API and page: what a person sees of alerts over HTTP, and what their role
lets them do (a viewer reads, an operator silences and sends tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client
from tests.observability.test_webhook_channel import Receiver

CODE = """
from legato import pipeline, task

@task(in_process=True)
def boom() -> None:
    raise ValueError("no rows")

@pipeline
def sales():
    boom()
"""


@pytest.fixture
def ws(tmp_path: Path, receiver: Receiver) -> Iterator[Workspace]:
    extra = (
        f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n'
        '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
    )
    with Workspace(make_project(tmp_path / "p", CODE, extra=extra)) as w:
        yield w


def test_alerts_are_listed_with_their_messages_over_the_api_and_on_the_page(
    ws: Workspace, receiver: Receiver
) -> None:
    d = door(ws)
    run = d.runs.execute(d.runs.create_run("sales").id)
    d.alerts.evaluate(ws.clock())
    d.alerts.deliver(ws.clock(), "test")
    viewer = signed_client(ws, "viewer")
    (alert,) = viewer.get("/api/v1/alerts").json()
    assert (alert["rule"], alert["run_id"], alert["state"]) == ("failures", run.id, "open")
    assert [(x["channel"], x["state"]) for x in alert["deliveries"]] == [("ops", "sent")]
    (rule,) = viewer.get("/api/v1/alerts/rules").json()
    assert (rule["name"], rule["channels"]) == ("failures", ["ops"])
    page = viewer.get("/alerts")
    assert page.status_code == 200
    assert f'href="/runs/{run.id}"' in page.text and "ops: trigger sent" in page.text
    assert 'href="/alerts"' in viewer.get("/").text  # linked from the navigation


def test_an_operator_silences_and_tests_a_rule_and_a_viewer_may_not(
    ws: Workspace, receiver: Receiver
) -> None:
    viewer = signed_client(ws, "viewer")
    refused = viewer.post("/api/v1/alerts/rules/failures/silence", json={"for": "2h"})
    assert refused.status_code == 403
    operator = signed_client(ws, "operator")
    done = operator.post("/api/v1/alerts/rules/failures/silence", json={"for": "2h"})
    assert done.status_code == 200 and done.json()["rule"] == "failures"
    assert [s["rule"] for s in viewer.get("/api/v1/alerts/silences").json()] == ["failures"]
    assert "Unsilence" in viewer.get("/alerts").text
    wrong = operator.post("/api/v1/alerts/rules/failures/silence", json={"for": "soon"})
    assert wrong.status_code == 400
    endless = operator.post("/api/v1/alerts/rules/failures/silence", json={"for": "9999999d"})
    assert endless.status_code == 400 and "3650d" in endless.text
    ended = operator.post("/api/v1/alerts/rules/failures/unsilence").json()
    assert ended == {"rule": "failures", "ended": True}
    (sent,) = operator.post("/api/v1/alerts/rules/failures/test").json()
    assert sent == {"channel": "ops", "error": None}
    assert json.loads(receiver.got[-1][1])["kind"] == "test"
    assert operator.post("/api/v1/alerts/rules/nope/test").status_code == 404
