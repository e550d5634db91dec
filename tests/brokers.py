"""Helpers of the tests that talk to RabbitMQ and MQTT for real: throwaway queues, and a
subscriber that gathers what a topic receives."""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextmanager
def amqp_queues(url: str) -> Iterator[Any]:
    """``make()``: a new durable queue's name (declared); every one is deleted afterwards."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    made: list[str] = []

    def make(name: str | None = None) -> str:
        made.append(name or unique("legato-test"))
        ch.queue_declare(made[-1], durable=True)
        return made[-1]

    try:
        yield make
    finally:
        for name in made:
            with contextlib.suppress(Exception):
                ch.queue_delete(name)
        with contextlib.suppress(Exception):
            conn.close()


def amqp_drain(url: str, name: str, expect: int, timeout: float = 20.0) -> list[Any]:
    """Take ``expect`` messages off queue ``name`` (acknowledged): (properties, body) pairs."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        got: list[Any] = []
        for method, props, body in ch.consume(name, inactivity_timeout=timeout):
            if method is None:
                break
            got.append((props, body))
            ch.basic_ack(method.delivery_tag)
            if len(got) == expect:
                break
        ch.cancel()
        return got
    finally:
        conn.close()


def amqp_count(url: str, name: str) -> int:
    """How many ready messages queue ``name`` holds."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(conn.channel().queue_declare(name, passive=True).method.message_count)
    finally:
        conn.close()


def amqp_publish(url: str, name: str, *bodies: bytes, message_id: str | None = None) -> None:
    """Put ``bodies`` on queue ``name`` as persistent messages, confirmed."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for body in bodies:
            props = pika.BasicProperties(delivery_mode=2, message_id=message_id)
            ch.basic_publish("", name, body, props, mandatory=True)
    finally:
        conn.close()


def mqtt_host_port(url: str) -> tuple[str, int]:
    host, _, port = url.split("://", 1)[1].rpartition(":")
    return host, int(port)


class MqttCollector:
    """A QoS 1 subscriber to ``topic`` (MQTT 5): ``messages`` fills as they arrive."""

    def __init__(self, url: str, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: queue.Queue[Any] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=unique("collector"), protocol=mqtt.MQTTv5
        )
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(*mqtt_host_port(url))
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        if not subscribed.wait(10):
            raise AssertionError(f"could not subscribe to {topic!r}")

    def take(self, count: int, timeout: float = 20.0) -> list[Any]:
        return [self.messages.get(timeout=timeout) for _ in range(count)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_publish(url: str, topic: str, *bodies: bytes, key: str | None = None) -> None:
    """Publish ``bodies`` to ``topic`` at QoS 1 and wait for the broker to take them."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=unique("publisher"), protocol=mqtt.MQTTv5
    )
    client.connect(*mqtt_host_port(url))
    client.loop_start()
    try:
        for body in bodies:
            props = None
            if key is not None:
                props = Properties(PacketTypes.PUBLISH)
                props.UserProperty = [("idempotency-key", key)]
            client.publish(topic, body, qos=1, properties=props).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
