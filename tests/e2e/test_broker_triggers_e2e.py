"""RabbitMQ queue and MQTT topic triggers end to end: `legato scheduler` against the real
RabbitMQ and Mosquitto, killed right after it records a run: one run per message, never two.

The brokers are ``LEGATO_TEST_AMQP_URL`` / ``LEGATO_TEST_MQTT_URL`` or the local defaults;
unreachable: the tests are skipped, or fail when CI=true. Queues and sessions are removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.brokers import (
    amqp_count,
    amqp_publish,
    amqp_queues,
    mqtt_host_port,
    mqtt_publish,
    unique,
)
from tests.e2e.test_triggers_e2e import MARK, all_runs, wait_succeeded
from tests.helpers import Daemons, make_project, marks, wait_for

if TYPE_CHECKING:
    from legato.store.store import Store

CODE = (
    MARK.replace("nats_stream, redis_stream", "mqtt_topic, rabbitmq_queue")
    + """
@task(retries=1)  # a run interrupted by a crash carries on with a second attempt
def take(n: int) -> int:
    mark(f"n{n}")
    return n

@pipeline(triggers=[TRIGGER])
def from_broker(n: int):
    take(n)
"""
)


def crash_and_count(
    daemons: Daemons,
    project: Path,
    store: Store,
    send: Callable[[int], None],
    settle: Callable[[], None],
) -> None:
    """Messages 1 and 2 make runs; the scheduler is killed as soon as message 3's run is
    recorded; 4 arrives while nothing listens; a new scheduler makes exactly the missing runs."""
    first = daemons.up(project, command="scheduler")
    send(1)
    send(2)
    wait_succeeded(store, 2)
    send(3)
    wait_for(lambda: len(all_runs(store)) >= 3, timeout=15, what="a run for message 3")
    first.kill()
    send(4)
    second = daemons.up(project, command="scheduler")
    wait_succeeded(store, 4)
    settle()
    runs = all_runs(store)
    assert sorted(r.params["n"] for r in runs) == [1, 2, 3, 4], [r.params for r in runs]
    assert {r.state.value for r in runs} == {"succeeded"}, [(r.params, r.error) for r in runs]
    done = marks(project / "marks.txt")
    assert sorted(set(done)) == ["n1", "n2", "n3", "n4"]
    assert done.count("n3") <= 2 and all(done.count(m) == 1 for m in ("n1", "n2", "n4")), done
    assert second.stop() == 0, second.output()
    assert "Traceback" not in second.output(), second.output()


# -- RabbitMQ -------------------------------------------------------------------------------


@pytest.fixture
def queue_project(tmp_path: Path, amqp_url: str) -> Iterator[tuple[str, Path]]:
    """(a new queue, a project whose pipeline it triggers); the queue is deleted after."""
    with amqp_queues(amqp_url) as make_queue:
        name = make_queue()
        trigger = f'rabbitmq_queue("{name}", url="{amqp_url}")'
        yield name, make_project(tmp_path / "proj", CODE.replace("TRIGGER", trigger))


def test_rabbitmq_queue_makes_one_run_per_message_across_a_crash(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    amqp_url: str,
    queue_project: tuple[str, Path],
) -> None:
    name, project = queue_project
    store = store_of(project)

    def send(n: int) -> None:
        amqp_publish(amqp_url, name, json.dumps({"n": n}).encode())

    def settle() -> None:
        # Every message acknowledged: none is left to be delivered again.
        wait_for(lambda: amqp_count(amqp_url, name) == 0, timeout=10, what="an empty queue")
        time.sleep(1.0)  # a redelivered message would make its (second) run by now

    crash_and_count(daemons, project, store, send, settle)
    runs = all_runs(store)
    assert {r.origin for r in runs} == {f"trigger:amqp-{name}"}


def test_rabbitmq_messages_with_one_message_id_make_one_run_and_bad_ones_are_refused(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    amqp_url: str,
    queue_project: tuple[str, Path],
) -> None:
    name, project = queue_project
    store = store_of(project)
    daemons.up(project, command="scheduler")
    same = json.dumps({"n": 1}).encode()
    amqp_publish(amqp_url, name, same, same, message_id="order-1")  # a publisher's retry
    amqp_publish(amqp_url, name, b"not JSON")
    amqp_publish(amqp_url, name, same, json.dumps({"n": 2}).encode())  # no id: by content
    amqp_publish(amqp_url, name, same)  # the same content again: a new message all the same
    wait_succeeded(store, 4)
    wait_for(lambda: amqp_count(amqp_url, name) == 0, timeout=10, what="an empty queue")
    runs = all_runs(store)
    assert sorted(r.params["n"] for r in runs) == [1, 1, 1, 2], [r.params for r in runs]
    events = store.triggers.trigger_events(pipeline="from_broker", limit=100)
    refused = [e for e in events if e.status == "failed"]
    assert len(refused) == 1 and "not JSON" in (refused[0].message or "")
    assert "id:order-1" in {e.event_key for e in events}


# -- MQTT -----------------------------------------------------------------------------------


@pytest.fixture
def mqtt_session(mqtt_url: str) -> Iterator[str]:
    """A client id for the trigger; its persistent session is removed after the test."""
    import paho.mqtt.client as mqtt

    client_id = unique("legato-test")
    yield client_id
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.connect(*mqtt_host_port(mqtt_url), clean_start=True)  # expiry 0: dropped on leave
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def subscribe_in_session(url: str, topic: str, client_id: str) -> None:
    """Make the trigger's persistent session and subscription before its scheduler starts,
    so nothing published from now on can be missed."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    done = threading.Event()
    client.on_subscribe = lambda *a: done.set()
    client.connect(*mqtt_host_port(url), clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert done.wait(10)
    client.disconnect()
    client.loop_stop()


def mqtt_project(tmp_path: Path, url: str, topic: str, client_id: str) -> Path:
    """A project whose pipeline a topic triggers, its session subscribed already."""
    subscribe_in_session(url, topic, client_id)
    trigger = f'mqtt_topic("{topic}", url="{url}", client_id="{client_id}")'
    return make_project(tmp_path / "proj", CODE.replace("TRIGGER", trigger))


def test_mqtt_topic_makes_one_run_per_message_across_a_crash(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    mqtt_url: str,
    mqtt_session: str,
) -> None:
    topic = unique("legato/test") + "/orders"
    project = mqtt_project(tmp_path, mqtt_url, topic, mqtt_session)
    store = store_of(project)

    def send(n: int) -> None:
        mqtt_publish(mqtt_url, topic, json.dumps({"n": n}).encode())

    def settle() -> None:
        time.sleep(1.5)  # an unacknowledged message comes back at once on reconnection

    crash_and_count(daemons, project, store, send, settle)
    runs = all_runs(store)
    assert {r.origin for r in runs} == {f"trigger:mqtt-{topic.replace('/', '-')}"}


def test_mqtt_keyed_repeats_make_one_run_and_identical_messages_each_make_one(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    mqtt_url: str,
    mqtt_session: str,
) -> None:
    topic = unique("legato/test") + "/+"
    project = mqtt_project(tmp_path, mqtt_url, topic, mqtt_session)
    store = store_of(project)
    daemons.up(project, command="scheduler")
    one = json.dumps({"n": 1}).encode()
    mqtt_publish(mqtt_url, topic.replace("+", "a"), one, one, key="run-1/push/0")  # a retry
    mqtt_publish(mqtt_url, topic.replace("+", "b"), json.dumps({"n": 2}).encode())
    mqtt_publish(mqtt_url, topic.replace("+", "b"), json.dumps({"n": 2}).encode())
    runs = wait_succeeded(store, 3)
    time.sleep(1.0)  # a fourth run would show by now
    runs = all_runs(store)
    assert sorted(r.params["n"] for r in runs) == [1, 2, 2], [r.params for r in runs]
