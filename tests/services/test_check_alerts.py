"""``check_failed`` alerts: a failing check raises one per (asset, check) with its failing
rows in the message, delivered to a real webhook receiver, and its next pass resolves it;
rules choose checks by their severity and by name patterns of checks and assets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.observability.alert_rules import AlertConfigError, alert, parse_rules
from legato.observability.notice_text import facts
from legato.services.alert_evaluation import notice_from_json
from legato.services.door import Door
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project
from tests.observability.test_webhook_channel import Receiver

CODE = """
import pandas as pd

from legato import checks, pipeline, task

@task(
    produces="shop.orders",
    checks=[
        checks.unique("order_id"),
        checks.accepted_values("status", ["new", "paid"], severity="warn"),
    ],
)
def orders(bad: bool) -> pd.DataFrame:
    ids = [1, 2, 2, 4] if bad else [1, 2, 3, 4]
    status = ["new", "paid", "paid", "lost"] if bad else ["new", "paid", "paid", "new"]
    return pd.DataFrame({"order_id": ids, "status": status})

@pipeline
def shop(bad: bool = False):
    orders(bad)
"""

RULES = """
[alerts.bad_data]
condition = "check_failed"
channels = ["ops"]
severity = "critical"

[alerts.shop_warnings]
condition = "check_failed"
channels = ["ops"]
check_severity = "warn"
assets = ["shop.*"]

[alerts.elsewhere]
condition = "check_failed"
channels = ["ops"]
check_severity = "any"
assets = ["warehouse.*"]
"""

START = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    receiver: Receiver,
    store_url_for: Callable[[str], str],
) -> Any:
    store = ""
    if request.param == "postgresql":
        store = f'[store]\nurl = "{store_url_for("postgresql")}"\n'
    extra = (
        f'{store}[web]\npublic_url = "https://legato.example"\n'
        f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n{RULES}'
    )
    workspace = Workspace(make_project(tmp_path / "p", CODE, extra=extra), clock=ManualClock(START))
    yield workspace
    workspace.close()


def cycle(d: Door, clock: ManualClock) -> list[dict[str, Any]]:
    d.alerts.evaluate(clock())
    return [s.__dict__ for s in d.alerts.deliver(clock(), "test-owner")]


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver.got]


def test_a_failing_check_alerts_with_its_rows_and_its_next_pass_resolves_it(
    ws: Workspace, receiver: Receiver
) -> None:
    d, clock = door(ws), ws.clock
    assert isinstance(clock, ManualClock)
    bad = d.runs.run_pipeline("shop", {"bad": True})
    assert bad.state == RunState.FAILED
    cycle(d, clock)
    sent = {b["rule"]: b for b in bodies(receiver)}
    assert set(sent) == {"bad_data", "shop_warnings"}  # elsewhere watches other assets
    blocked = sent["bad_data"]
    assert blocked["kind"] == "trigger" and blocked["severity"] == "critical"
    assert blocked["title"] == "Check failed: unique(order_id) on shop.orders"
    assert blocked["url"] == f"https://legato.example/runs/{bad.id}"
    assert (blocked["pipeline"], blocked["task"]) == ("shop", "orders")
    assert blocked["details"]["Failing rows"] == "2 of 4 rows"
    assert blocked["details"]["Check severity"] == "block"
    assert '{"order_id": 2, "status": "paid"}' in blocked["details"]["Sample"]
    assert blocked["error"].endswith("repeated values)")
    warned = sent["shop_warnings"]
    assert warned["title"] == "Check failed: accepted_values(status) on shop.orders"
    assert warned["details"]["Failing rows"] == "1 of 4 rows"
    assert '"status": "lost"' in warned["details"]["Sample"]
    # What a mailbox or a chat shows: the count and the sample among the facts.
    shown = dict(facts(notice_from_json(blocked)))
    assert shown["Failing rows"] == "2 of 4 rows" and shown["Task"] == "orders"

    clock.advance(120)
    d.runs.run_pipeline("shop", {"bad": True})  # still failing: the alerts stay open, quiet
    cycle(d, clock)
    assert len(receiver.got) == 2

    good = d.runs.run_pipeline("shop", {"bad": False})
    assert good.state == RunState.SUCCEEDED
    cycle(d, clock)
    resolved = {b["rule"]: b for b in bodies(receiver)[2:]}
    assert set(resolved) == {"bad_data", "shop_warnings"}
    assert all(b["kind"] == "resolve" for b in resolved.values())
    assert resolved["bad_data"]["dedup_key"] == blocked["dedup_key"]
    assert f"the check passed in run {good.id}" in resolved["bad_data"]["title"]
    assert {v.alert.state for v in d.alerts.recent()} == {"resolved"}


def test_a_failure_and_the_next_pass_in_one_evaluation_raise_then_resolve(
    ws: Workspace, receiver: Receiver
) -> None:
    d, clock = door(ws), ws.clock
    assert isinstance(clock, ManualClock)
    d.runs.run_pipeline("shop", {"bad": True})
    d.runs.run_pipeline("shop", {"bad": False})
    cycle(d, clock)
    got = [(b["rule"], b["kind"]) for b in bodies(receiver)]
    assert sorted(got) == [("bad_data", "resolve"), ("bad_data", "trigger"),
                           ("shop_warnings", "resolve"), ("shop_warnings", "trigger")]
    assert {v.alert.state for v in d.alerts.recent()} == {"resolved"}


def test_check_rules_are_checked_when_read() -> None:
    def rules(body: str) -> None:
        parse_rules({"r": {"condition": "check_failed", "channels": ["ops"], **json.loads(body)}})

    with pytest.raises(AlertConfigError, match="check_severity = 'block'"):
        rules('{"severity": "block"}')  # the alert's severity is not the checks'
    with pytest.raises(AlertConfigError, match="check_severity must be one of: block, warn"):
        rules('{"check_severity": "sometimes"}')
    with pytest.raises(AlertConfigError, match="'assets' belongs to check_failed rules only"):
        parse_rules({"r": {"condition": "run_failed", "channels": ["ops"], "assets": ["x"]}})
    rule = alert("check_failed", channels=["ops"], check_severity="any", checks=["unique*"])
    assert rule.watches_check("unique(id)", None, "warn")
    assert not rule.watches_check("not_null(id)", "a.b", "block")
    assert rule.parameters() == {"check_severity": "any", "checks": "unique*"}
    default = parse_rules({"r": {"condition": "check_failed", "channels": ["ops"]}})["r"]
    assert default.watches_check("x", "a", "block") and not default.watches_check("x", "a", "warn")
