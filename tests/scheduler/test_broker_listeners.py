"""RabbitMQ and MQTT trigger listeners against the real brokers: a scheduler that dies after
recording a run but before acknowledging its message, or before recording it, makes exactly
one run per message once the message comes back."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from legato.scheduler.listeners import StreamListener, make_listener
from legato.scheduler.sources.event_source import Message
from legato.services.workspace import Workspace
from tests.brokers import amqp_count, amqp_publish, amqp_queues, mqtt_publish, unique
from tests.helpers import door, make_project, wait_for

CODE = """
from legato import pipeline, task
from legato.triggers import mqtt_topic, rabbitmq_queue

@task
def take(n: int) -> int:
    return n

@pipeline(triggers=[TRIGGER])
def from_broker(n: int):
    take(n)
"""


class DiesBeforeAck:
    """The source as a scheduler killed between recording a run and acknowledging sees it."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def ack(self, messages: Sequence[Message]) -> None:
        return None


def listener_of(ws: Workspace) -> StreamListener:
    pipe = ws.project.pipelines["from_broker"]
    made = make_listener(door(ws).automation, pipe, pipe.automation.triggers[0], print)
    assert isinstance(made, StreamListener)
    return made


def runs_of(ws: Workspace) -> list[Any]:
    return sorted(ws.store.browse.list_runs(limit=None), key=lambda r: r.id)


def crash_between_record_and_ack(ws: Workspace, send: Any, settled: Any) -> None:
    listener = listener_of(ws)
    source = listener.source_factory()
    send(1)
    got = source.fetch(1, 10)
    assert len(got) == 1 and not got[0].redelivered
    listener.handle(DiesBeforeAck(source), got)  # type: ignore[arg-type]
    assert [r.params for r in runs_of(ws)] == [{"n": 1}]
    source.close()  # the connection ends with the message unacknowledged

    source = listener.source_factory()
    again = source.fetch(1, 10)
    assert len(again) == 1 and again[0].redelivered and again[0].data == got[0].data
    listener.handle(source, again)
    assert [r.params for r in runs_of(ws)] == [{"n": 1}]  # no second run

    # Dies before recording: the message comes back and makes its one run.
    send(2)
    lost = source.fetch(1, 10)
    source.close()
    source = listener.source_factory()
    back = source.fetch(1, 10)
    assert back[0].redelivered and back[0].data == lost[0].data
    listener.handle(source, back)
    # The same content again, never delivered before: a new message, a new run.
    send(2)
    listener.handle(source, source.fetch(1, 10))
    assert sorted(r.params["n"] for r in runs_of(ws)) == [1, 2, 2]
    settled(source)
    source.close()


@pytest.fixture
def queues(amqp_url: str) -> Iterator[Any]:
    with amqp_queues(amqp_url) as make_queue:
        yield make_queue


def test_rabbitmq_redelivery_after_a_crash_makes_no_second_run(
    tmp_path: Path, amqp_url: str, queues: Any
) -> None:
    name = queues()
    code = CODE.replace("TRIGGER", f'rabbitmq_queue("{name}", url="{amqp_url}")')
    with Workspace(make_project(tmp_path / "p", code)) as ws:

        def send(n: int) -> None:
            amqp_publish(amqp_url, name, json.dumps({"n": n}).encode())

        def settled(source: Any) -> None:
            source.close()
            wait_for(lambda: amqp_count(amqp_url, name) == 0, timeout=10, what="no message left")

        crash_between_record_and_ack(ws, send, settled)


def test_a_missing_queue_is_declared_or_said(tmp_path: Path, amqp_url: str, queues: Any) -> None:
    from legato.scheduler.sources import AmqpQueueSource, StreamNotFound

    name = unique("legato-test")
    with pytest.raises(StreamNotFound, match=r"declare it, or pass declare=True"):
        AmqpQueueSource(amqp_url, name, declare=False)
    source = AmqpQueueSource(amqp_url, queues(name), declare=True)
    source.close()


def test_mqtt_redelivery_after_a_crash_makes_no_second_run(
    tmp_path: Path, mqtt_url: str
) -> None:
    topic = unique("legato/test")
    client_id = unique("legato-test")
    trigger = f'mqtt_topic("{topic}", url="{mqtt_url}", client_id="{client_id}")'
    with Workspace(make_project(tmp_path / "p", CODE.replace("TRIGGER", trigger))) as ws:

        def send(n: int) -> None:
            mqtt_publish(mqtt_url, topic, json.dumps({"n": n}).encode())

        def settled(source: Any) -> None:
            source.close()
            again = listener_of(ws).source_factory()
            try:
                assert again.fetch(1, 1.0) == []  # every message was acknowledged
            finally:
                again.close()

        try:
            crash_between_record_and_ack(ws, send, settled)
        finally:
            from legato.scheduler.sources import MqttTopicSource

            MqttTopicSource(mqtt_url, topic, client_id, session_expiry=1).close()


@pytest.mark.parametrize("broker", ["amqp", "mqtt"])
def test_a_listener_carries_on_after_the_network_to_its_broker_was_cut(
    tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> None:
    from urllib.parse import urlsplit

    from tests.e2e.proxy import TcpProxy

    url = request.getfixturevalue(f"{broker}_url")
    where = urlsplit(url)
    proxy = TcpProxy(where.hostname or "127.0.0.1", where.port or 0)
    through = where._replace(netloc=where.netloc.replace(f":{where.port}", f":{proxy.port}"))
    if broker == "amqp":
        made = request.getfixturevalue("queues")()
        trigger = f'rabbitmq_queue("{made}", url="{through.geturl()}")'

        def send(n: int) -> None:
            amqp_publish(url, made, json.dumps({"n": n}).encode())

    else:
        made = unique("legato/test")
        client_id = unique("legato-test")
        trigger = f'mqtt_topic("{made}", url="{through.geturl()}", client_id="{client_id}")'

        def send(n: int) -> None:
            mqtt_publish(url, made, json.dumps({"n": n}).encode())

    made_runs: list[Any] = []
    with Workspace(make_project(tmp_path / "p", CODE.replace("TRIGGER", trigger))) as ws:
        listener = listener_of(ws)
        listener.on_run = made_runs.append
        listener.start()
        try:
            wait_for(lambda: listener.source is not None, timeout=10, what="listening")
            send(1)
            wait_for(lambda: len(made_runs) == 1, timeout=10, what="a run for message 1")
            proxy.cut()
            send(2)  # waits in the queue, or in the session, while the network is down
            proxy.restore()
            wait_for(lambda: len(made_runs) == 2, timeout=20, what="a run for message 2")
            assert sorted(r.params["n"] for r in made_runs) == [1, 2]
        finally:
            listener.stop()
            listener.join(10)
            proxy.close()
            if broker == "mqtt":
                from legato.scheduler.sources import MqttTopicSource

                MqttTopicSource(url, made, client_id, session_expiry=1).close()
