"""docs/messaging.md and the guide's trigger list: every example is valid, the resource
kinds' tables open and answer on the machine's brokers, and the publishing task runs."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path
from typing import Any

from legato.definitions.context import Context
from legato.resources.kind import kind_class
from tests.brokers import amqp_drain, amqp_queues, mqtt_host_port, unique

DOCS = Path(__file__).parents[2] / "docs"


def blocks(doc: str, language: str, heading: str | None = None) -> list[str]:
    text = (DOCS / doc).read_text(encoding="utf-8")
    if heading is not None:
        start = text.index(heading)
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else len(text)]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_each_kind_example_is_valid_and_answers(redis_url: str, amqp_url: str, mqtt_url: str):
    kinds = []
    for block in blocks("messaging.md", "toml"):
        for name, table in tomllib.loads(block)["resources"].items():
            resource = kind_class(table["kind"])(name, table)
            kinds.append(table["kind"])
            if table["kind"] == "amqp":
                resource = kind_class("amqp")(name, {"url": table["url"]})
            client = resource.open()
            try:
                assert resource.check(client)
            finally:
                resource.close(client)
    assert kinds == ["redis", "amqp", "mqtt"]


def test_the_publishing_task_sends_every_row_to_each_broker(
    redis_url: str, amqp_url: str, mqtt_url: str
) -> None:
    (block,) = blocks("messaging.md", "python", "## Publishing rows")
    direct, routed, stream = unique("legato-doc"), unique("legato-doc"), unique("legato-doc")
    code = block.replace('"daily-summary"', repr(direct)).replace('"sales-daily"', repr(stream))
    code = code.replace('"sales.daily"', repr(routed))
    scope: dict[str, Any] = {}
    exec(compile(code, "docs/messaging.md", "exec"), scope)
    host, port = mqtt_host_port(mqtt_url)
    clients = {
        "broker": kind_class("amqp")("broker", {"url": amqp_url}),
        "plant": kind_class("mqtt")("plant", {"host": host, "port": port}),
        "cache": kind_class("redis")("cache", {"url": redis_url}),
    }
    opened = {name: kind.open() for name, kind in clients.items()}
    ctx = Context("run-1", "p", "push_summary", 1, None, {}, logging.getLogger("t"))
    rows = [{"day": "2026-12-05", "sales": 12}, {"day": "2026-12-06", "sales": 7}]
    try:
        with amqp_queues(amqp_url) as make_queue:
            make_queue(direct)
            with opened["broker"].channel() as ch:
                ch.queue_bind(make_queue(routed), "amq.topic", routing_key=routed)
            assert scope["push_summary"].fn(ctx, rows=rows, **opened) == 2
            got = amqp_drain(amqp_url, direct, 2)
            assert [json.loads(body) for _, body in got] == rows
            assert [p.message_id for p, _ in amqp_drain(amqp_url, routed, 2)] == [
                "run-1/push_summary/topic/0",
                "run-1/push_summary/topic/1",
            ]
        assert opened["cache"].xlen(stream) == 2
    finally:
        opened["cache"].delete(stream)
        for name, kind in clients.items():
            kind.close(opened[name])


def test_the_trigger_examples_declare_their_triggers() -> None:
    (block,) = blocks("messaging.md", "python", "## Triggers from RabbitMQ and MQTT")
    scope: dict[str, Any] = {}
    exec(compile(block, "docs/messaging.md", "exec"), scope)
    triggers = scope["on_order"].automation.triggers
    named = [(t.kind, t.name) for t in triggers]
    assert named == [("amqp", "amqp-orders"), ("mqtt", "mqtt-orders")]
    assert triggers[1].batch == 50 and triggers[1].param == "orders"

    (guide,) = blocks("guide.md", "python", "## Triggers")
    scope = {}
    exec(compile(guide, "docs/guide.md", "exec"), scope)
    kinds = [t.kind for t in scope["triggers"]]
    assert kinds == ["file", "upstream", "asset", "webhook", "redis", "nats", "amqp", "mqtt"]
    assert scope["triggers"][-1].name == "mqtt-plant-any-readings"
