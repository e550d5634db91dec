"""docs/monitoring.md's Channels section stays true: every legato.toml example is a valid
channel, every kind is shown, the webhook body shown is the one sent, and the signature
recipe given to receivers accepts a real signed delivery and refuses a forged one."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from legato.observability.channels import KINDS, SecretRef, WebhookChannel, parse_channels
from tests.observability.conftest import FAILED_RUN, Receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"


def section_blocks(language: str) -> list[str]:
    """The fenced ``language`` blocks of the Channels section."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Channels\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(rf"^```{language}\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)


def any_value(ref: SecretRef) -> str:
    return f"value of {ref.name}"


@pytest.mark.parametrize("example", section_blocks("toml"))
def test_each_legato_toml_example_is_a_valid_channel(example: str) -> None:
    tables = tomllib.loads(example)["channels"]
    channels = parse_channels(tables, any_value)
    assert set(channels) == set(tables)


def test_the_examples_show_every_kind_of_channel() -> None:
    kinds = {
        table["kind"]
        for example in section_blocks("toml")
        for table in tomllib.loads(example)["channels"].values()
    }
    assert kinds == set(KINDS)


def test_the_webhook_body_shown_has_the_fields_sent() -> None:
    (shown,) = section_blocks("json")
    assert list(json.loads(shown)) == list(FAILED_RUN.as_json())


def test_the_signature_recipe_accepts_a_real_delivery_and_refuses_a_forged_one(
    receiver: Receiver,
) -> None:
    (recipe,) = section_blocks("python")
    namespace: dict[str, Any] = {}
    exec(compile(recipe, str(DOC), "exec"), namespace)
    verify = namespace["verify"]
    tables = {"hook": {"kind": "webhook", "url": receiver.url, "secret": {"secret": "key"}}}
    parse_channels(tables, lambda ref: "sh4red")["hook"].send(FAILED_RUN)
    # The same, signed an hour ago: a replay of a captured request.
    an_hour_ago = time.time() - 3600
    WebhookChannel("hook", receiver.url, any_value, "sh4red", lambda: an_hour_ago).send(FAILED_RUN)
    (headers, body), (old_headers, old_body) = receiver.got

    assert verify(b"sh4red", headers, body)
    assert not verify(b"sh4red", headers, body.replace(b"daily_sales", b"daily_salez"))
    assert not verify(b"another key", headers, body)
    assert not verify(b"sh4red", old_headers, old_body)
    assert verify(b"sh4red", old_headers, old_body, tolerance=7200)
