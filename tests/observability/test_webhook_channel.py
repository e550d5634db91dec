"""The generic webhook channel: a local HTTP server receives the JSON body and checks its
HMAC-SHA256 signature as a receiver would."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from legato.observability.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ChannelConfigError,
    DeliveryFailed,
    SecretRef,
    parse_channels,
)
from tests.observability.conftest import FAILED_RUN, Receiver


def reveal(ref: SecretRef) -> str:
    return {"hook_key": "k3y"}[ref.name]


def test_a_signed_webhook_arrives_and_its_signature_checks_out(receiver: Receiver) -> None:
    tables = {"ops": {"kind": "webhook", "url": receiver.url, "secret": {"secret": "hook_key"}}}
    parse_channels(tables, reveal)["ops"].send(FAILED_RUN)
    ((headers, body),) = receiver.got
    expected = hmac.new(
        b"k3y", headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], f"sha256={expected}")
    sent = json.loads(body)
    assert (sent["rule"], sent["pipeline"]) == ("failures", "daily_sales")
    assert sent["error"] == FAILED_RUN.error
    assert sent["url"] == "https://legato.example/runs/r42"


def test_a_server_error_is_retryable_and_a_refusal_is_not(receiver: Receiver) -> None:
    channel = parse_channels({"ops": {"kind": "webhook", "url": receiver.url}}, reveal)["ops"]
    receiver.status = 503
    with pytest.raises(DeliveryFailed) as later:
        channel.send(FAILED_RUN)
    assert later.value.retryable and "503" in str(later.value)
    receiver.status = 404
    with pytest.raises(DeliveryFailed) as never:
        channel.send(FAILED_RUN)
    assert not never.value.retryable


def test_a_missing_secret_fails_the_delivery_for_good(receiver: Receiver) -> None:
    tables = {"ops": {"kind": "webhook", "url": receiver.url, "secret": {"secret": "gone"}}}
    with pytest.raises(DeliveryFailed, match="no secret named 'gone'") as failed:
        parse_channels(tables, reveal)["ops"].send(FAILED_RUN)
    assert not failed.value.retryable and receiver.got == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "pigeon"}, "kind must be"),
        ({"kind": "webhook"}, "needs url"),
        ({"kind": "webhook", "url": "http://x", "colour": "red"}, "unknown key 'colour'"),
        ({"kind": "webhook", "url": {"vault": "x"}}, "must be text"),
    ],
)
def test_a_wrong_channel_table_is_refused_with_the_reason(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        parse_channels({"ops": table}, reveal)
