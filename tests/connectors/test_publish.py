"""Publishing rows to RabbitMQ, MQTT and a Redis stream, against the real brokers: every
message is there when the call returns, and a retried attempt sends the same keys."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from legato.connectors.publish import (
    UnroutableError,
    publish_amqp,
    publish_mqtt,
    publish_redis_stream,
)
from legato.definitions.context import Context
from legato.resources.kind import kind_class
from tests.brokers import MqttCollector, amqp_drain, amqp_queues, mqtt_host_port, unique

ROWS = [{"order": 1, "total": 9.5}, {"order": 2, "total": 12.0}, {"order": 3, "total": 1.25}]


def ctx(attempt: int = 1, task: str = "push") -> Context:
    return Context("run-7", "nightly", task, attempt, None, {}, logging.getLogger("test"))


@pytest.fixture
def amqp(amqp_url: str) -> Iterator[tuple[Any, Any]]:
    """(the client the amqp kind opens, a queue maker)."""
    kind = kind_class("amqp")("broker", {"url": amqp_url})
    client = kind.open()
    with amqp_queues(amqp_url) as make_queue:
        yield client, make_queue
    kind.close(client)


def test_amqp_rows_arrive_persistent_with_keys_a_retry_repeats(
    amqp_url: str, amqp: tuple[Any, Any]
) -> None:
    client, make_queue = amqp
    name = make_queue()
    assert publish_amqp(client, ROWS, queue=name, ctx=ctx(1), batch=2) == 3
    assert publish_amqp(client, ROWS, queue=name, ctx=ctx(2), batch=2) == 3  # the retry
    got = amqp_drain(amqp_url, name, 6)
    assert [json.loads(body) for _, body in got] == ROWS + ROWS
    keys = [props.message_id for props, _ in got]
    assert keys == ["run-7/push/0", "run-7/push/1", "run-7/push/2"] * 2
    assert [props.headers["idempotency-key"] for props, _ in got] == keys
    assert {props.delivery_mode for props, _ in got} == {2}
    assert {props.content_type for props, _ in got} == {"application/json"}


def test_amqp_through_an_exchange_and_a_message_no_queue_takes_is_an_error(
    amqp_url: str, amqp: tuple[Any, Any]
) -> None:
    client, make_queue = amqp
    name = make_queue()
    with client.channel() as ch:
        ch.queue_bind(name, "amq.direct", routing_key=name)
    sent = publish_amqp(client, ROWS[:1], exchange="amq.direct", routing_key=name, key="daily")
    assert sent == 1
    props, body = amqp_drain(amqp_url, name, 1)[0]
    assert props.message_id == "daily/0" and json.loads(body) == ROWS[0]
    nowhere = unique("legato-nowhere")
    with pytest.raises(UnroutableError, match=rf"3 of 3 messages .* {nowhere!r} reached no queue"):
        publish_amqp(client, ROWS, queue=nowhere, ctx=ctx())
    # The client carries on after the error.
    assert publish_amqp(client, ROWS[:1], queue=name, key="after") == 1
    with pytest.raises(ValueError, match="pass ctx=ctx"):
        publish_amqp(client, ROWS, queue=name)


def test_frames_and_tables_go_as_json_rows(amqp_url: str, amqp: tuple[Any, Any]) -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    client, make_queue = amqp
    name = make_queue()
    frame = pd.DataFrame(
        {"order": [1, 2], "day": pd.to_datetime(["2026-12-01", "2026-12-02"]),
         "total": [9.5, float("nan")]}
    )
    publish_amqp(client, frame, queue=name, key="pandas")
    publish_amqp(client, pa.Table.from_pylist(ROWS[:2]), queue=name, key="arrow", batch=1)
    publish_amqp(client, pl.DataFrame(ROWS[:2]), queue=name, key="polars")
    got = [(p.message_id, json.loads(b)) for p, b in amqp_drain(amqp_url, name, 6)]
    assert got == [
        ("pandas/0", {"order": 1, "day": "2026-12-01T00:00:00", "total": 9.5}),
        ("pandas/1", {"order": 2, "day": "2026-12-02T00:00:00", "total": None}),
        ("arrow/0", ROWS[0]),
        ("arrow/1", ROWS[1]),
        ("polars/0", ROWS[0]),
        ("polars/1", ROWS[1]),
    ]


def test_mqtt_rows_are_acknowledged_with_keys_a_retry_repeats(mqtt_url: str) -> None:
    host, port = mqtt_host_port(mqtt_url)
    topic = unique("legato/test")
    seen = MqttCollector(mqtt_url, topic)
    kind = kind_class("mqtt")("plant", {"host": host, "port": port})
    client = kind.open()
    try:
        assert publish_mqtt(client, ROWS, topic, ctx=ctx(1), batch=2) == 3
        assert publish_mqtt(client, ROWS, topic, ctx=ctx(2)) == 3
        got = seen.take(6)
    finally:
        kind.close(client)
        seen.close()
    assert [json.loads(m.payload) for m in got] == ROWS + ROWS
    keys = [dict(m.properties.UserProperty)["idempotency-key"] for m in got]
    assert keys == ["run-7/push/0", "run-7/push/1", "run-7/push/2"] * 2
    assert {m.qos for m in got} == {1}


def test_redis_stream_rows_with_keys_and_a_length_cap(redis_url: str) -> None:
    kind = kind_class("redis")("cache", {"url": redis_url})
    client = kind.open()
    stream = unique("legato-test")
    try:
        assert publish_redis_stream(client, ROWS, stream, ctx=ctx(1), batch=2) == 3
        assert publish_redis_stream(client, ROWS, stream, ctx=ctx(2)) == 3
        entries = client.xrange(stream)
        assert [json.loads(f[b"payload"]) for _, f in entries] == ROWS + ROWS
        keys = [f[b"idempotency-key"].decode() for _, f in entries]
        assert keys == ["run-7/push/0", "run-7/push/1", "run-7/push/2"] * 2
        many = [{"n": n} for n in range(300)]
        publish_redis_stream(client, many, stream, key="cap", maxlen=50, approximate=False)
        assert client.xlen(stream) == 50
        last = client.xrevrange(stream, count=1)[0][1]
        assert json.loads(last[b"payload"]) == {"n": 299}
    finally:
        client.delete(stream)
        kind.close(client)
