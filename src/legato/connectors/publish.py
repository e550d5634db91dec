"""Activation to message brokers: rows published to RabbitMQ, MQTT or a Redis stream.

Each function takes the client of a resource (what the ``amqp``, ``mqtt`` or ``redis`` kind
hands a task) and returns only once the broker holds every message: RabbitMQ committed it,
MQTT answered PUBACK, Redis added it. Each message carries an idempotency key
``<run id>/<task>[/<map index>][/<key>]/<position>`` (see ``legato.connectors.idempotency``),
the same in every attempt of the task, so a consumer can drop what a retry sends again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from legato.connectors.idempotency import idempotency_key
from legato.connectors.rows import encode, row_batches

if TYPE_CHECKING:
    from legato.definitions.context import Context
    from legato.resources.amqp import AmqpClient

__all__ = [
    "IDEMPOTENCY_HEADER",
    "UnroutableError",
    "publish_amqp",
    "publish_mqtt",
    "publish_redis_stream",
]

#: The header (AMQP), user property (MQTT 5) or stream field (Redis) holding a message's key.
IDEMPOTENCY_HEADER = "idempotency-key"


def _messages(
    rows: Any, batch: int, ctx: Context | None, key: str | None
) -> Iterator[list[tuple[str, bytes]]]:
    """``rows`` as lists of at most ``batch`` messages, each its idempotency key and body,
    numbered from 0 across the batches."""
    # Asked before the first batch is read, so a missing name fails before anything is sent.
    idempotency_key(ctx, key, 0)
    position = 0
    for chunk in row_batches(rows, batch):
        keys = [idempotency_key(ctx, key, position + i) for i in range(len(chunk))]
        yield list(zip(keys, map(encode, chunk), strict=True))
        position += len(chunk)


def publish_amqp(
    client: AmqpClient,
    rows: Any,
    *,
    ctx: Context | None = None,
    key: str | None = None,
    exchange: str = "",
    routing_key: str | None = None,
    queue: str | None = None,
    batch: int = 500,
    headers: dict[str, Any] | None = None,
) -> int:
    """Publish each row as a persistent JSON message; the number published.

    To a queue (``queue=``, through the default exchange) or to ``exchange`` with
    ``routing_key``. Each batch of ``batch`` messages is one AMQP transaction: the call
    returns once RabbitMQ committed every message (written to disk, for a durable queue),
    and raises :class:`UnroutableError` when a message could be routed to no queue (they are
    mandatory). The key is the message's ``message_id`` and its ``idempotency-key`` header.
    The client's lock is taken per batch, so other threads of the worker get turns.
    """
    import pika

    if (queue is None) == (routing_key is None):
        raise ValueError("publish_amqp needs queue=... or routing_key=... (not both)")
    if queue is not None and exchange:
        raise ValueError("queue= publishes through the default exchange: leave exchange out")
    route = queue if queue is not None else routing_key
    assert route is not None
    sent = 0
    for messages in _messages(rows, batch, ctx, key):
        # One commit per batch rather than a confirm per message: each confirm of a
        # persistent message waits for its own disk write, over ten times slower
        # (bench/publish.py, bench/RESULTS.md).
        with client.transaction() as (ch, returned):
            for message_key, body in messages:
                props = pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=message_key,
                    headers={**(headers or {}), IDEMPOTENCY_HEADER: message_key},
                )
                ch.basic_publish(exchange, route, body, props, mandatory=True)
                sent += 1
            ch.tx_commit()
            client.settle()
            if returned:
                raise UnroutableError(
                    f"{len(returned)} of {len(messages)} messages to exchange {exchange!r} with "
                    f"routing key {route!r} reached no queue (the first: {returned[0]})"
                )
    return sent


class UnroutableError(Exception):
    """RabbitMQ returned messages that no queue took (nothing is bound for their route)."""


def publish_mqtt(
    client: Any,
    rows: Any,
    topic: str,
    *,
    ctx: Context | None = None,
    key: str | None = None,
    batch: int = 500,
    retain: bool = False,
    timeout: float = 30.0,
) -> int:
    """Publish each row to ``topic`` at QoS 1 and wait for the broker's PUBACKs; the number
    published. The key goes in the ``idempotency-key`` user property (MQTT 5). Raises
    TimeoutError when the broker has not acknowledged a batch within ``timeout`` seconds (the
    task's retry then sends the batch again, with the same keys)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    sent = 0
    for messages in _messages(rows, batch, ctx, key):
        pending = []
        for message_key, body in messages:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [(IDEMPOTENCY_HEADER, message_key)]
            props.ContentType = "application/json"
            info = client.publish(topic, body, qos=1, retain=retain, properties=props)
            pending.append(info)
            sent += 1
        for info in pending:
            # paho queues while disconnected and sends on reconnect; the wait covers both.
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise TimeoutError(
                    f"MQTT broker did not acknowledge message {info.mid} on {topic!r} "
                    f"within {timeout:g} s"
                )
    return sent


def publish_redis_stream(
    client: Any,
    rows: Any,
    stream: str,
    *,
    ctx: Context | None = None,
    key: str | None = None,
    field: str = "payload",
    maxlen: int | None = None,
    approximate: bool = True,
    batch: int = 500,
) -> int:
    """XADD each row to ``stream`` (JSON in ``field``, the key in ``idempotency-key``); the
    number added. ``maxlen`` trims the stream as it grows (``~``, cheaper, when
    ``approximate``). Each batch is one round trip. A ``redis_stream`` trigger reads the
    ``payload`` field, so a pipeline can start runs from what another publishes."""
    sent = 0
    for messages in _messages(rows, batch, ctx, key):
        pipe = client.pipeline(transaction=False)
        for message_key, body in messages:
            fields = {field: body, IDEMPOTENCY_HEADER: message_key}
            pipe.xadd(stream, fields, maxlen=maxlen, approximate=approximate)
            sent += 1
        pipe.execute()
    return sent
