"""The ``slack`` and ``pagerduty`` channels: a notice as a Slack incoming-webhook message,
or as a PagerDuty Events API v2 event that opens and resolves an incident.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from legato.observability.channels import (
    Notice,
    Reveal,
    SecretRef,
    check_keys,
    option,
    post_json,
    reveal_value,
    setting,
)
from legato.observability.notice_text import facts, headline, item_line, shown_items

#: Where PagerDuty's Events API v2 takes events.
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

# Slack shows a section's text up to 3000 characters and a field's up to 2000, and at most
# ten fields; PagerDuty cuts a summary at 1024.
_SECTION_LIMIT = 2900
_FIELD_LIMIT = 1900
_FIELDS = 10
_SUMMARY_LIMIT = 1024

#: A Slack message's emoji and side colour by what it says: resolve, test, or the severity.
SLACK_LOOKS = {
    "resolve": (":white_check_mark:", "#2eb67d"),
    "test": (":test_tube:", "#6172f3"),
    "critical": (":rotating_light:", "#912018"),
    "error": (":red_circle:", "#e01e5a"),
    "warning": (":warning:", "#ecb22e"),
    "info": (":information_source:", "#36c5f0"),
}

#: Legato's severities onto PagerDuty's (which happen to share the names); anything else
#: pages as an error rather than being refused.
PAGERDUTY_SEVERITIES = {
    "critical": "critical",
    "error": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
}


def parse_slack(name: str, table: Mapping[str, Any], reveal: Reveal) -> SlackChannel:
    """The Slack channel a ``[channels.NAME]`` table of kind "slack" describes."""
    check_keys(table, {"url"}, name)
    return SlackChannel(name, setting(table, "url", name, required=True), reveal)


def parse_pagerduty(name: str, table: Mapping[str, Any], reveal: Reveal) -> PagerDutyChannel:
    """The PagerDuty channel a ``[channels.NAME]`` table of kind "pagerduty" describes."""
    check_keys(table, {"routing_key", "url", "source"}, name)
    return PagerDutyChannel(
        name,
        setting(table, "routing_key", name, required=True),
        reveal,
        url=option(table, "url", name, str, PAGERDUTY_EVENTS_URL),
        source=option(table, "source", name, str),
    )


@dataclass(frozen=True)
class SlackChannel:
    """POSTs each notice to a Slack incoming webhook (``url``, usually a secret)."""

    name: str
    url: str | SecretRef
    reveal: Reveal
    kind: str = "slack"

    def send(self, notice: Notice) -> None:
        body = json.dumps(slack_message(notice)).encode()
        post_json(reveal_value(self.url, self.reveal, self.name), body, {})


def slack_message(notice: Notice) -> dict[str, Any]:
    """The incoming-webhook body: a one-line ``text`` (what a notification shows) above a
    card coloured by severity: the facts, the error as code, a button to the run page."""
    emoji, colour = SLACK_LOOKS.get(notice.kind) or SLACK_LOOKS.get(
        notice.severity, SLACK_LOOKS["error"]
    )
    title = _escape(headline(notice))
    linked = f"<{notice.url}|{title}>" if notice.url else title
    # The headline is the message's text (shown above the card), so the card starts with
    # the facts.
    fields = [
        _mrkdwn(f"*{label}*\n{_escape(value)}"[:_FIELD_LIMIT])
        for label, value in facts(notice)[:_FIELDS]
    ]
    blocks: list[dict[str, Any]] = [{"type": "section", "fields": fields}]
    if notice.error:
        blocks.append(_section(f"*Error*\n```{_escape(notice.error)[:_SECTION_LIMIT]}```"))
    items, more = shown_items(notice)
    if items:
        lines = [
            f"• <{i.url}|{_escape(item_line(i))}>" if i.url else f"• {_escape(item_line(i))}"
            for i in items
        ]
        if more:
            lines.append(f"and {more} more")
        blocks.append(_section("\n".join(lines)[:_SECTION_LIMIT]))
    if notice.url:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open the run page"},
            "url": notice.url,
        }
        blocks.append({"type": "actions", "elements": [button]})
    return {
        "text": f"{emoji} {linked}",
        "attachments": [{"color": colour, "fallback": headline(notice), "blocks": blocks}],
    }


def _escape(text: str) -> str:
    # The three characters Slack's mrkdwn gives a meaning to (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


@dataclass(frozen=True)
class PagerDutyChannel:
    """Sends each notice as an Events API v2 event: a resolve resolves the incident its
    trigger opened (both carry the notice's ``dedup_key``); anything else triggers."""

    name: str
    routing_key: str | SecretRef
    reveal: Reveal
    url: str = PAGERDUTY_EVENTS_URL
    source: str | None = None  # where the alert comes from; the public URL's host if None
    kind: str = "pagerduty"

    def send(self, notice: Notice) -> None:
        key = reveal_value(self.routing_key, self.reveal, self.name)
        body = json.dumps(pagerduty_event(notice, key, self.source)).encode()
        post_json(self.url, body, {})


def pagerduty_event(notice: Notice, routing_key: str, source: str | None) -> dict[str, Any]:
    """The Events API v2 body for ``notice``."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if notice.kind == "resolve" else "trigger",
        "dedup_key": notice.dedup_key,
    }
    if notice.kind == "resolve":
        return event  # PagerDuty reads nothing more of a resolve
    site = urlsplit(notice.url) if notice.url else None
    details: dict[str, Any] = {label: value for label, value in facts(notice)}
    if notice.error:
        details["Error"] = notice.error
    items, more = shown_items(notice)
    if items:
        details["Alerts"] = [item_line(i) for i in items] + ([f"and {more} more"] if more else [])
    payload = {
        "summary": headline(notice)[:_SUMMARY_LIMIT],
        "source": source or (site.hostname if site and site.hostname else "legato"),
        "severity": PAGERDUTY_SEVERITIES.get(notice.severity, "error"),
        "timestamp": notice.at.isoformat(),
        "component": notice.pipeline,
        "class": notice.condition,
        "custom_details": details,
    }
    event["payload"] = {k: v for k, v in payload.items() if v is not None}
    event["client"] = "Legato"
    if site is not None and notice.url:
        event["client_url"] = f"{site.scheme}://{site.netloc}/"
        event["links"] = [{"href": notice.url, "text": _link_text(notice)}]
    return event


def _link_text(notice: Notice) -> str:
    return f"Run {notice.run_id} in Legato" if notice.run_id else "Open in Legato"

