"""Slack and PagerDuty channels: what a local HTTP server receives, read as Slack and
PagerDuty would show it."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from legato.observability.channels import (
    Channel,
    ChannelConfigError,
    DeliveryFailed,
    Notice,
    SecretRef,
    parse_channels,
)
from legato.observability.chat_channels import PagerDutyChannel
from tests.observability.conftest import FAILED_RUN, Receiver

ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"


def reveal(ref: SecretRef) -> str:
    return {"pd_key": ROUTING_KEY}[ref.name]


def slack_card(body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """The headline, the side colour and the card's blocks of a Slack message."""
    (attachment,) = body["attachments"]
    return body["text"], attachment["color"], attachment["blocks"]


def block_texts(blocks: list[dict[str, Any]]) -> str:
    texts = [b["text"]["text"] for b in blocks if "text" in b]
    texts += [f["text"] for b in blocks for f in b.get("fields", [])]
    return "\n".join(texts)


def test_a_slack_message_shows_the_failure_and_links_the_run(receiver: Receiver) -> None:
    secrets = {"slack_url": receiver.url}
    tables = {"team": {"kind": "slack", "url": {"secret": "slack_url"}}}
    parse_channels(tables, lambda ref: secrets[ref.name])["team"].send(FAILED_RUN)

    headline, colour, blocks = slack_card(receiver.bodies()[0])
    assert headline == (
        ":red_circle: <https://legato.example/runs/r42|Run failed: daily_sales 2026-12-05>"
    )
    shown = block_texts(blocks)
    assert "*Pipeline*\ndaily_sales" in shown and "*Partition*\n2026-12-05" in shown
    assert "*Failed task*\nload_sales" in shown
    # Slack reads < > & as markup: the error line is escaped, so it shows as written.
    assert "```KeyError: 'amount' &lt;in row 3 &amp; after&gt;```" in shown
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://legato.example/runs/r42"
    assert colour != slack_card(_sent_slack(receiver, replace(FAILED_RUN, kind="resolve")))[1]


def _sent_slack(receiver: Receiver, notice: Notice) -> dict[str, Any]:
    parse_channels({"t": {"kind": "slack", "url": receiver.url}}, reveal)["t"].send(notice)
    body: dict[str, Any] = receiver.bodies()[-1]
    return body


def test_a_slack_resolve_says_resolved_in_green(receiver: Receiver) -> None:
    headline, colour, blocks = slack_card(
        _sent_slack(receiver, replace(FAILED_RUN, kind="resolve", error=None))
    )
    assert headline.startswith(":white_check_mark: <https://legato.example/runs/r42|Resolved: ")
    assert colour == "#2eb67d" and "Error" not in block_texts(blocks)


@pytest.mark.parametrize(
    ("severity", "emoji"), [("critical", ":rotating_light:"), ("warning", ":warning:")]
)
def test_a_slack_message_looks_as_severe_as_its_alert(
    receiver: Receiver, severity: str, emoji: str
) -> None:
    headline, _, _ = slack_card(_sent_slack(receiver, replace(FAILED_RUN, severity=severity)))
    assert headline.startswith(emoji)


def test_a_slack_group_lists_its_runs_as_links(receiver: Receiver) -> None:
    items = tuple(
        replace(FAILED_RUN, title=f"Run failed: p{n}", url=f"https://l/runs/{n}") for n in (1, 2)
    )
    group = replace(FAILED_RUN, kind="group", title="2 runs failed", items=items)
    body = _sent_slack(receiver, group)
    shown = block_texts(slack_card(body)[2])
    assert "• <https://l/runs/1|Run failed: p1: KeyError" in shown
    assert "• <https://l/runs/2|Run failed: p2" in shown


def test_a_slack_webhook_that_is_gone_is_not_retried(receiver: Receiver) -> None:
    receiver.status = 404  # Slack's answer for a removed webhook: no_service
    with pytest.raises(DeliveryFailed) as failed:
        _sent_slack(receiver, FAILED_RUN)
    assert not failed.value.retryable


def test_a_slack_webhook_that_is_down_is_retried_without_showing_its_url() -> None:
    with socket.socket() as held:  # bound, not listening: connections are refused
        held.bind(("127.0.0.1", 0))
        secrets = {"slack_url": f"http://127.0.0.1:{held.getsockname()[1]}/services/T0/B0/XyZ"}
        tables = {"team": {"kind": "slack", "url": {"secret": "slack_url"}}}
        with pytest.raises(DeliveryFailed) as failed:
            parse_channels(tables, lambda ref: secrets[ref.name])["team"].send(FAILED_RUN)
    assert failed.value.retryable and "XyZ" not in str(failed.value)


def pagerduty(receiver: Receiver, **table: Any) -> Channel:
    table = {"kind": "pagerduty", "routing_key": {"secret": "pd_key"}, "url": receiver.url, **table}
    return parse_channels({"pd": table}, reveal)["pd"]


def test_a_pagerduty_resolve_closes_the_incident_its_trigger_opened(
    receiver: Receiver,
) -> None:
    receiver.status = 202  # what the Events API answers
    channel = pagerduty(receiver)
    channel.send(FAILED_RUN)
    channel.send(replace(FAILED_RUN, kind="resolve", at=datetime(2026, 12, 6, 4, tzinfo=UTC)))

    trigger, resolve = receiver.bodies()
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == FAILED_RUN.dedup_key
    assert trigger["routing_key"] == resolve["routing_key"] == ROUTING_KEY
    payload = trigger["payload"]
    assert payload["summary"] == "Run failed: daily_sales 2026-12-05"
    assert (payload["severity"], payload["source"]) == ("error", "legato.example")
    assert (payload["component"], payload["class"]) == ("daily_sales", "run_failed")
    details = payload["custom_details"]
    assert details["Partition"] == "2026-12-05" and details["Failed task"] == "load_sales"
    assert details["Error"] == FAILED_RUN.error
    assert trigger["links"] == [
        {"href": "https://legato.example/runs/r42", "text": "Run r42 in Legato"}
    ]


@pytest.mark.parametrize(
    ("kind", "severity", "expected"),
    [
        ("group", "critical", "critical"),
        ("test", "info", "info"),
        ("trigger", "warning", "warning"),
        ("trigger", "sev-unknown", "error"),
    ],
)
def test_every_other_notice_triggers_at_a_pagerduty_severity(
    receiver: Receiver, kind: str, severity: str, expected: str
) -> None:
    pagerduty(receiver, source="etl-prod").send(replace(FAILED_RUN, kind=kind, severity=severity))
    (event,) = receiver.bodies()
    assert event["event_action"] == "trigger"
    assert (event["payload"]["severity"], event["payload"]["source"]) == (expected, "etl-prod")


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (400, False)])
def test_pagerduty_throttling_is_retried_and_a_bad_event_is_not(
    receiver: Receiver, status: int, retryable: bool
) -> None:
    receiver.status = status
    with pytest.raises(DeliveryFailed) as failed:
        pagerduty(receiver).send(FAILED_RUN)
    assert failed.value.retryable is retryable


def test_pagerduty_sends_to_the_events_api_unless_told_otherwise() -> None:
    channel = parse_channels({"pd": {"kind": "pagerduty", "routing_key": "k"}}, reveal)["pd"]
    assert isinstance(channel, PagerDutyChannel) and channel.url == "https://events.pagerduty.com/v2/enqueue"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "slack"}, "needs url"),
        ({"kind": "slack", "url": "https://x", "channel": "#ops"}, "unknown key 'channel'"),
        ({"kind": "pagerduty"}, "needs routing_key"),
        ({"kind": "pagerduty", "routing_key": "k", "source": 3}, "source must be text"),
    ],
)
def test_a_wrong_chat_table_is_refused_with_the_reason(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        parse_channels({"ops": table}, reveal)
