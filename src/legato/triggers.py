"""Triggers for ``@pipeline(triggers=[...])``: files, upstream success, webhooks, streams, queues,
topics."""

from legato.definitions.triggering import (
    AmqpTrigger,
    FileTrigger,
    MqttTrigger,
    NatsTrigger,
    RedisStreamTrigger,
    Trigger,
    UpstreamTrigger,
    WebhookTrigger,
    mqtt_topic,
    nats_stream,
    on_file,
    on_success,
    rabbitmq_queue,
    redis_stream,
    webhook,
)

__all__ = [
    "AmqpTrigger",
    "FileTrigger",
    "MqttTrigger",
    "NatsTrigger",
    "RedisStreamTrigger",
    "Trigger",
    "UpstreamTrigger",
    "WebhookTrigger",
    "mqtt_topic",
    "nats_stream",
    "on_file",
    "on_success",
    "rabbitmq_queue",
    "redis_stream",
    "webhook",
]
