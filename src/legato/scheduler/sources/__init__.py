"""Event sources for triggers: streams, queues, topics and file listings the scheduler pulls
from."""

from legato.scheduler.sources.amqp_queue import AmqpQueueSource
from legato.scheduler.sources.event_source import (
    Message,
    SourceError,
    StreamNotFound,
    StreamSource,
)
from legato.scheduler.sources.files import FileEntry, FileSource
from legato.scheduler.sources.mqtt_topic import MqttTopicSource
from legato.scheduler.sources.nats_jetstream import NatsJetStreamSource
from legato.scheduler.sources.redis_streams import RedisStreamSource

__all__ = [
    "AmqpQueueSource",
    "FileEntry",
    "FileSource",
    "Message",
    "MqttTopicSource",
    "NatsJetStreamSource",
    "RedisStreamSource",
    "SourceError",
    "StreamNotFound",
    "StreamSource",
]
