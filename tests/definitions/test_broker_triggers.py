"""rabbitmq_queue() and mqtt_topic(): what they accept, the names they take, and what their
descriptions (kept in snapshots, shown in listings) say of a URL's password."""

from __future__ import annotations

import pytest

from legato.triggers import mqtt_topic, rabbitmq_queue, redis_stream


def test_names_and_settings() -> None:
    queue = rabbitmq_queue("orders", batch=10, param="messages", max_wait="3s")
    assert (queue.kind, queue.name, queue.batch, queue.max_wait) == ("amqp", "amqp-orders", 10, 3)
    topic = mqtt_topic("plant/+/temp/#", session_expiry="1h", start="earliest")
    assert (topic.kind, topic.name) == ("mqtt", "mqtt-plant-any-temp-all")
    assert topic.session_expiry == 3600 and topic.start == "earliest"
    assert mqtt_topic("a", client_id="mine", name="t").client_id == "mine"


def test_wrong_settings_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="amqp:// or amqps://"):
        rabbitmq_queue("orders", url="redis://127.0.0.1:6379/0")
    with pytest.raises(ValueError, match="mqtt:// or mqtts://"):
        mqtt_topic("a/b", url="tcp://127.0.0.1:1883")
    with pytest.raises(ValueError, match="batch > 1 needs param="):
        mqtt_topic("a/b", batch=5)
    with pytest.raises(ValueError, match="needs a queue name"):
        rabbitmq_queue("")
    with pytest.raises(ValueError, match="session_expiry must be a positive duration"):
        mqtt_topic("a", session_expiry=0)


def test_descriptions_never_hold_a_password() -> None:
    for trigger in (
        rabbitmq_queue("q", url="amqp://etl:s3cret@mq.example:5672/"),
        mqtt_topic("t", url="mqtt://etl:s3cret@mq.example:1883"),
        redis_stream("s", url="redis://:s3cret@cache.example:6379/0"),
    ):
        described = trigger.describe()
        assert "s3cret" not in str(described)
        assert "***@" in described["url"]
