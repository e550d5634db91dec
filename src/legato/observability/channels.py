"""The channels alerts are sent through, and the message they carry.

A ``Notice`` is one message: an alert raised, resolved, a grouped storm of them, or a test.
A ``Channel`` sends it somewhere (``send``), raising ``DeliveryFailed`` with whether trying
again later may help. Channels are read from legato.toml's ``[channels.NAME]`` tables by
``parse_channels``; a value that is a secret is written as ``{ secret = "NAME" }`` (Legato's
encrypted secrets) or ``{ env = "VAR" }`` and revealed only when a message is sent, through
the ``Reveal`` callable the caller hands in.

Kinds: ``webhook`` (JSON body signed with HMAC-SHA256, here), ``email`` (SMTP,
``email_channel``), ``slack`` and ``pagerduty`` (``chat_channels``). Deciding what to send,
the outbox and the retries live in the services (``legato.services.alerting``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import httpx

#: How long one delivery may take before it counts as failed (and is retried).
SEND_TIMEOUT = 10.0
#: The header carrying a webhook body's signature: ``sha256=<hex HMAC of the body>``.
SIGNATURE_HEADER = "X-Legato-Signature"
#: The header carrying when the body was signed (seconds since the epoch); signed with it.
TIMESTAMP_HEADER = "X-Legato-Timestamp"

NoticeKind = Literal["trigger", "resolve", "group", "test"]
SEVERITIES = ("critical", "error", "warning", "info")


class ChannelConfigError(ValueError):
    """A ``[channels.NAME]`` table is wrong; the message says which and why."""


class DeliveryFailed(Exception):
    """A message was not delivered. ``retryable``: trying again later may help (a timeout, a
    5xx answer, a refused connection); False when it cannot (a 4xx answer, a missing secret)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SecretRef:
    """A value in a channel's table kept elsewhere: ``kind`` is "secret" or "env"."""

    kind: Literal["secret", "env"]
    name: str


#: Turns a SecretRef into its value when a message is sent; raises KeyError when unknown.
Reveal = Callable[[SecretRef], str]


@dataclass(frozen=True)
class Notice:
    """One message to send. ``dedup_key`` is the same for every message about one alert (its
    rule and subject), so a receiver (PagerDuty) can pair a resolve with its trigger.
    ``items`` holds the alerts a ``group`` message stands for."""

    kind: NoticeKind
    rule: str
    condition: str  # e.g. "run_failed", "sla", "freshness"
    title: str  # one line, e.g. "Run failed: daily_sales 2026-12-05"
    dedup_key: str
    at: datetime
    severity: str = "error"
    pipeline: str | None = None
    run_id: str | None = None
    partition: str | None = None
    task: str | None = None
    error: str | None = None  # the last line of the error, when there is one
    url: str | None = None  # the page to open: a run's page on the public URL
    details: tuple[tuple[str, str], ...] = ()
    items: tuple[Notice, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """The message as JSON-ready data (the webhook body)."""
        return {
            "kind": self.kind,
            "rule": self.rule,
            "condition": self.condition,
            "title": self.title,
            "dedup_key": self.dedup_key,
            "at": self.at.isoformat(),
            "severity": self.severity,
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "partition": self.partition,
            "task": self.task,
            "error": self.error,
            "url": self.url,
            "details": dict(self.details),
            "items": [item.as_json() for item in self.items],
        }


class Channel(Protocol):
    """Where messages go. ``send`` raises DeliveryFailed when the message did not arrive."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def send(self, notice: Notice) -> None: ...


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``: a receiver computes
    the same from the raw body and the timestamp header and compares in constant time."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float = SEND_TIMEOUT,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST ``body`` as JSON (through ``client``, kept open by a caller sending many);
    DeliveryFailed (retryable or not) unless the answer is 2xx."""
    import httpx  # here: every command reads the channels' vocabulary, few send anything

    try:
        answer = (httpx.post if client is None else client.post)(
            url,
            content=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", retryable=True) from None
    if answer.is_success:
        return answer
    # 408 and 429 say "later"; other 4xx say the message or the address is wrong.
    retryable = answer.status_code >= 500 or answer.status_code in (408, 429)
    text = answer.text.strip().splitlines()[0][:200] if answer.text.strip() else ""
    raise DeliveryFailed(f"HTTP {answer.status_code} {text}".strip(), retryable=retryable)


@dataclass(frozen=True)
class WebhookChannel:
    """POSTs the notice as JSON to ``url``; with ``secret``, signs it (``sign``)."""

    name: str
    url: str | SecretRef
    reveal: Reveal
    secret: str | SecretRef | None = None
    clock: Callable[[], float] | None = None  # seconds since the epoch, for the timestamp
    kind: str = "webhook"

    def send(self, notice: Notice) -> None:
        import time

        body = json.dumps(notice.as_json(), separators=(",", ":")).encode()
        headers: dict[str, str] = {}
        if self.secret is not None:
            timestamp = str(int((self.clock or time.time)()))
            key = reveal_value(self.secret, self.reveal, self.name).encode()
            headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(key, timestamp, body)}
        post_json(reveal_value(self.url, self.reveal, self.name), body, headers)


def reveal_value(value: str | SecretRef, reveal: Reveal, channel: str) -> str:
    """``value`` itself, or the secret it refers to; DeliveryFailed (for good) when unknown."""
    if isinstance(value, str):
        return value
    try:
        return reveal(value)
    except KeyError:
        where = "secret" if value.kind == "secret" else "environment variable"
        raise DeliveryFailed(
            f"channel {channel!r}: no {where} named {value.name!r}", retryable=False
        ) from None


def setting(table: Mapping[str, Any], key: str, channel: str, *, required: bool) -> Any:
    """A value that may be a secret: a plain string, or ``{ secret = "NAME" }`` /
    ``{ env = "VAR" }`` (a SecretRef); None when absent and not ``required``."""
    value = table.get(key)
    if value is None:
        if required:
            raise ChannelConfigError(f"[channels.{channel}] needs {key}")
        return None
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((kind, name),) = value.items()
        if kind in ("secret", "env") and isinstance(name, str) and name:
            return SecretRef(kind, name)
    raise ChannelConfigError(
        f'[channels.{channel}] {key} must be text, {{ secret = "NAME" }} or {{ env = "VAR" }}'
    )


_TYPE_WORDS = {str: "text", bool: "true or false", int: "a whole number", list: "a list"}


def option(
    table: Mapping[str, Any],
    key: str,
    channel: str,
    kind: type,
    default: Any = None,
    *,
    required: bool = False,
) -> Any:
    """A plain (never secret) value of type ``kind``, or ``default`` when absent."""
    if required and key not in table:
        raise ChannelConfigError(f"[channels.{channel}] needs {key}")
    value = table.get(key, default)
    # TOML's true is also an int to Python; a port of `true` is a mistake, not 1.
    wrong = isinstance(value, bool) and kind is not bool
    if value is None or (isinstance(value, kind) and not wrong and value != ""):
        return value
    raise ChannelConfigError(f"[channels.{channel}] {key} must be {_TYPE_WORDS[kind]}")


def check_keys(table: Mapping[str, Any], allowed: set[str], channel: str) -> None:
    """ChannelConfigError naming the first key of ``table`` its kind does not know."""
    unknown = sorted(set(table) - allowed - {"kind"})
    if unknown:
        raise ChannelConfigError(f"[channels.{channel}] unknown key {unknown[0]!r}")


#: The kinds of channel, in the order an error message lists them.
KINDS = ("email", "slack", "pagerduty", "webhook")


def parse_channels(
    tables: Mapping[str, Mapping[str, Any]], reveal: Reveal, *, base: Path | None = None
) -> dict[str, Channel]:
    """The channels ``[channels.NAME]`` tables describe; ChannelConfigError when one is wrong.
    ``base``: the folder a relative path in a table (an email ``ca_file``) is relative to,
    the project's; the working directory when None."""
    # The other kinds build on this module's vocabulary, so they are imported here.
    from legato.observability.chat_channels import parse_pagerduty, parse_slack
    from legato.observability.email_channel import parse_email

    channels: dict[str, Channel] = {}
    for name, table in tables.items():
        kind = table.get("kind")
        if kind == "webhook":
            check_keys(table, {"url", "secret"}, name)
            channels[name] = WebhookChannel(
                name,
                setting(table, "url", name, required=True),
                reveal,
                secret=setting(table, "secret", name, required=False),
            )
        elif kind == "email":
            channels[name] = parse_email(name, table, reveal, base or Path.cwd())
        elif kind == "slack":
            channels[name] = parse_slack(name, table, reveal)
        elif kind == "pagerduty":
            channels[name] = parse_pagerduty(name, table, reveal)
        else:
            raise ChannelConfigError(
                f"[channels.{name}] kind must be one of: {', '.join(KINDS)} (got {kind!r})"
            )
    return channels
