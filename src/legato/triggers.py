"""Triggers for ``@pipeline(triggers=[...])``: files, upstream success, webhooks, streams."""

from legato.definitions.triggering import (
    FileTrigger,
    NatsTrigger,
    RedisStreamTrigger,
    Trigger,
    UpstreamTrigger,
    WebhookTrigger,
    nats_stream,
    on_file,
    on_success,
    redis_stream,
    webhook,
)

__all__ = [
    "FileTrigger",
    "NatsTrigger",
    "RedisStreamTrigger",
    "Trigger",
    "UpstreamTrigger",
    "WebhookTrigger",
    "nats_stream",
    "on_file",
    "on_success",
    "redis_stream",
    "webhook",
]
