"""Event sources for triggers: streams and file listings that the scheduler pulls from."""

from legato.scheduler.sources.event_source import (
    Message,
    SourceError,
    StreamNotFound,
    StreamSource,
)
from legato.scheduler.sources.files import FileEntry, FileSource
from legato.scheduler.sources.nats_jetstream import NatsJetStreamSource
from legato.scheduler.sources.redis_streams import RedisStreamSource

__all__ = [
    "FileEntry",
    "FileSource",
    "Message",
    "NatsJetStreamSource",
    "RedisStreamSource",
    "SourceError",
    "StreamNotFound",
    "StreamSource",
]
