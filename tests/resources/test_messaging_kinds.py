"""The redis, amqp and mqtt kinds against the real Redis, RabbitMQ and Mosquitto (skipped when
absent, failed when CI=true)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from legato.resources.kind import ResourceError, kind_class
from tests.brokers import MqttCollector, amqp_count, amqp_queues, mqtt_host_port, unique


def make(kind: str, **settings: Any) -> Any:
    return kind_class(kind)("it", {"kind": kind, **settings})


@pytest.fixture
def queues(amqp_url: str) -> Iterator[Any]:
    with amqp_queues(amqp_url) as make_queue:
        yield make_queue


# -- redis --------------------------------------------------------------------------------


def test_redis_opens_a_client_and_checks_with_ping(redis_url: str) -> None:
    kind = make("redis", url=redis_url, decode_responses=True)
    client = kind.open()
    try:
        assert kind.check(client).startswith("PING answered by redis://")
        name = unique("legato-test")
        client.set(name, "v", ex=60)
        assert client.get(name) == "v"
        client.delete(name)
    finally:
        kind.close(client)


def test_redis_settings_are_checked_and_a_dead_server_fails_the_check() -> None:
    with pytest.raises(ResourceError, match=r"resource 'it' \(redis\): url must start"):
        make("redis", url="http://127.0.0.1:6379/0")
    with pytest.raises(ResourceError, match="'url' is required"):
        make("redis")
    kind = make("redis", url="redis://:hunter2@127.0.0.1:1/0", connect_timeout=0.5)
    client = kind.open()
    with pytest.raises(Exception, match=r"Connection refused|Error 111"):
        kind.check(client)
    kind.close(client)


# -- amqp ---------------------------------------------------------------------------------


def test_amqp_check_looks_up_the_check_queue(amqp_url: str, queues: Any) -> None:
    name = queues()
    kind = make("amqp", url=amqp_url, check_queue=name)
    client = kind.open()
    try:
        assert kind.check(client) == f"queue {name!r} holds 0 messages"
        plain = make("amqp", url=amqp_url)
        assert plain.check(client).startswith("connected to amqp://guest:***@")
        missing = make("amqp", url=amqp_url, check_queue=unique("legato-missing"))
        with pytest.raises(Exception, match="NOT_FOUND"):
            missing.check(client)
        # The channel the broker closed is replaced: the client still works.
        assert kind.check(client) == f"queue {name!r} holds 0 messages"
    finally:
        kind.close(client)


def test_amqp_refused_credentials_say_where_without_the_password() -> None:
    kind = make("amqp", url="amqp://guest:wrong-secret@127.0.0.1:5672/")
    client = kind.open()
    with pytest.raises(ResourceError) as caught:
        kind.check(client)
    assert "amqp://guest:***@127.0.0.1:5672/" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


def test_amqp_client_is_shared_by_threads(amqp_url: str, queues: Any) -> None:
    name = queues()
    kind = make("amqp", url=amqp_url)
    client = kind.open()
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            for i in range(50):
                with client.channel(confirm=True) as ch:
                    ch.basic_publish("", name, f"{n}-{i}".encode(), mandatory=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kind.close(client)
    assert errors == []
    assert amqp_count(amqp_url, name) == 200


def test_amqp_client_connects_again_after_the_connection_dropped(
    amqp_url: str, queues: Any
) -> None:
    from tests.e2e.proxy import TcpProxy

    name = queues()
    where = urlsplit(amqp_url)
    proxy = TcpProxy(where.hostname or "127.0.0.1", where.port or 5672)
    url = where._replace(netloc=f"{where.username}:{where.password}@127.0.0.1:{proxy.port}")
    client = make("amqp", url=url.geturl()).open()
    try:
        with client.channel(confirm=True) as ch:
            ch.basic_publish("", name, b"before", mandatory=True)
        proxy.cut()  # a broker restart, as the client sees one
        proxy.restore()
        with client.channel(confirm=True) as ch:
            ch.basic_publish("", name, b"after", mandatory=True)
        assert client.connects == 2
        assert amqp_count(amqp_url, name) == 2
    finally:
        client.close()
        proxy.close()


# -- mqtt ---------------------------------------------------------------------------------


def test_mqtt_opens_a_connected_client_that_publishes(mqtt_url: str) -> None:
    host, port = mqtt_host_port(mqtt_url)
    topic = unique("legato/test")
    seen = MqttCollector(mqtt_url, topic)
    kind = make("mqtt", host=host, port=port, client_id="etl")
    client = kind.open()
    try:
        assert kind.check(client) == f"connected to mqtt://{host}:{port}"
        client.publish(topic, b"hello", qos=1).wait_for_publish(10)
        assert seen.take(1)[0].payload == b"hello"
    finally:
        kind.close(client)
        seen.close()
    assert not client.is_connected()


def test_mqtt_settings_are_checked_and_an_absent_broker_is_said(mqtt_url: str) -> None:
    with pytest.raises(ResourceError, match="unknown tls setting 'cafile'"):
        make("mqtt", tls={"cafile": "x"})
    with pytest.raises(ResourceError, match="port must be"):
        make("mqtt", port=0)
    with pytest.raises(ResourceError, match="unknown setting 'topic'"):
        make("mqtt", topic="x")
    from tests.helpers import free_port

    dead = make("mqtt", host="127.0.0.1", port=free_port())
    with pytest.raises(ResourceError, match=r"resource 'it': cannot connect to MQTT at mqtt://"):
        dead.open()
