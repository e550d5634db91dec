"""Triggers: events that start runs of a pipeline.

These are declarations only; the scheduler (``legato.scheduler``) listens for them. Each
trigger has a name, unique within its pipeline, under which the store keeps its cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from legato.definitions.assets import Asset
from legato.definitions.durations import parse_duration
from legato.domain.urls import redact_url

Start = Literal["latest", "earliest"]


@dataclass(frozen=True)
class Trigger:
    """Base of all triggers."""

    name: str

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for snapshots and listings."""
        return {"kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class FileTrigger(Trigger):
    """A run for each new file matching ``glob`` (a local path or any fsspec URL)."""

    glob: str
    param: str
    interval: float  # seconds between listings: storage systems have no change notifications

    @property
    def kind(self) -> str:
        return "file"

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "glob": self.glob,
            "param": self.param,
            "interval": self.interval,
        }


@dataclass(frozen=True)
class UpstreamTrigger(Trigger):
    """A run each time pipeline ``upstream`` succeeds (for the same partition when both are
    partitioned)."""

    upstream: str

    @property
    def kind(self) -> str:
        return "upstream"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "upstream": self.upstream}


@dataclass(frozen=True)
class AssetTrigger(Trigger):
    """A run each time one of ``assets`` is materialized: one run per materialization (for
    the same partition when both are partitioned; see ``on_asset``)."""

    assets: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "asset"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "assets": list(self.assets)}


@dataclass(frozen=True)
class WebhookTrigger(Trigger):
    """A run for each authorised HTTP POST to the trigger's URL; the JSON body gives params."""

    @property
    def kind(self) -> str:
        return "webhook"


@dataclass(frozen=True)
class StreamTrigger(Trigger):
    """Common settings of stream triggers: one run per message or per micro-batch."""

    url: str
    batch: int  # at most this many messages per run
    max_wait: float  # seconds to fill a batch
    param: str | None  # None: a message's JSON object is the params; else params[param]
    start: Start

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "url": redact_url(self.url),
            "batch": self.batch,
            "max_wait": self.max_wait,
            "param": self.param,
            "start": self.start,
        }


@dataclass(frozen=True)
class RedisStreamTrigger(StreamTrigger):
    """Messages of a Redis stream, read through a consumer group."""

    stream: str
    group: str | None  # None: "legato-<pipeline>", so each pipeline sees every message
    field: str

    @property
    def kind(self) -> str:
        return "redis"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "stream": self.stream, "group": self.group}


@dataclass(frozen=True)
class NatsTrigger(StreamTrigger):
    """Messages on a NATS JetStream subject, read through a durable pull consumer."""

    subject: str
    durable: str | None  # None: "legato-<pipeline>-<trigger name>"
    stream: str | None
    create_stream: bool
    ack_wait: float

    @property
    def kind(self) -> str:
        return "nats"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subject": self.subject, "durable": self.durable}


@dataclass(frozen=True)
class AmqpTrigger(StreamTrigger):
    """Messages of a RabbitMQ queue, consumed with manual acknowledgements."""

    queue: str
    declare: bool  # declare the queue (durable) when it does not exist

    @property
    def kind(self) -> str:
        return "amqp"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "queue": self.queue, "declare": self.declare}


@dataclass(frozen=True)
class MqttTrigger(StreamTrigger):
    """Messages on an MQTT topic (filter), read at QoS 1 through a persistent session."""

    topic: str
    client_id: str | None  # None: "legato-<project>-<pipeline>-<trigger>-<host>"
    session_expiry: float  # seconds the broker keeps the session while nobody is connected

    @property
    def kind(self) -> str:
        return "mqtt"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "topic": self.topic, "client_id": self.client_id}


def _seconds(value: str | float | timedelta, field: str) -> float:
    out = parse_duration(value, field=field)
    if out is None or out <= 0:
        raise ValueError(f"{field} must be a positive duration, got {value!r}")
    return out


def _stream_common(
    batch: int, max_wait: str | float | timedelta, param: str | None, start: str
) -> tuple[int, float]:
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
    if batch > 1 and not param:
        raise ValueError(
            "batch > 1 needs param=: the name of the list param that receives the messages"
        )
    if start not in ("latest", "earliest"):
        raise ValueError(f"start must be 'latest' or 'earliest', got {start!r}")
    return batch, _seconds(max_wait, "max_wait")


def on_file(
    glob: str,
    *,
    param: str = "path",
    every: str | float | timedelta = "5s",
    name: str | None = None,
) -> FileTrigger:
    """Start one run per new file matching ``glob``; the file's path goes to param ``param``."""
    if not glob or not isinstance(glob, str):
        raise ValueError(f"on_file needs a glob such as 'data/in/*.csv', got {glob!r}")
    return FileTrigger(name or "file", glob, param, _seconds(every, "every"))


def on_success(upstream: str, *, name: str | None = None) -> UpstreamTrigger:
    """Start a run each time pipeline ``upstream`` succeeds."""
    if not upstream or not isinstance(upstream, str):
        raise ValueError(f"on_success needs a pipeline name, got {upstream!r}")
    return UpstreamTrigger(name or f"after-{upstream}", upstream)


def on_asset(*keys: str | Iterable[str], name: str | None = None) -> AssetTrigger:
    """Start a run each time one of the assets ``keys`` is materialized.

    ``on_asset("shop.orders")``, ``on_asset("a", "b")`` or ``on_asset(["a", "b"])``: one run
    per materialization of any of them. When the pipeline and the asset are both
    partitioned, the run is for the materialization's partition; a pipeline without
    partitions gets a plain run; a partitioned pipeline triggered by an asset without
    partitions runs the partitions a schedule firing at the materialization's time would (the
    latest closed time window, each static key).
    """
    flat: list[str] = []
    for k in keys:
        flat.extend([k] if isinstance(k, str) else list(k))
    if not flat:
        raise ValueError('on_asset needs an asset key, e.g. on_asset("shop.orders")')
    for k in flat:
        Asset(k)  # the same rules as a task's produces= (raises ValueError naming the key)
    unique = tuple(dict.fromkeys(flat))
    if name is None:
        shown = unique if len(unique) <= 3 else (unique[0], f"and-{len(unique) - 1}-more")
        name = "asset-" + "-".join(shown)
    return AssetTrigger(name, unique)


def webhook(name: str = "webhook") -> WebhookTrigger:
    """Start a run for each HTTP POST to ``/hooks/<pipeline>/<name>`` with the right token."""
    return WebhookTrigger(name)


def redis_stream(
    stream: str,
    *,
    url: str = "redis://127.0.0.1:6379/0",
    group: str | None = None,
    field: str = "payload",
    batch: int = 1,
    max_wait: str | float | timedelta = "1s",
    param: str | None = None,
    start: Start = "latest",
    name: str | None = None,
) -> RedisStreamTrigger:
    """Start a run per message (or per batch of up to ``batch``) of a Redis stream.

    A message's ``field`` holds JSON; a message is acknowledged once its run is recorded.
    """
    if not stream:
        raise ValueError("redis_stream needs a stream name")
    n, wait = _stream_common(batch, max_wait, param, start)
    return RedisStreamTrigger(
        name or f"redis-{stream}", url, n, wait, param, start, stream, group, field
    )


def nats_stream(
    subject: str,
    *,
    url: str = "nats://127.0.0.1:4222",
    durable: str | None = None,
    stream: str | None = None,
    create_stream: bool = False,
    ack_wait: str | float | timedelta = "30s",
    batch: int = 1,
    max_wait: str | float | timedelta = "1s",
    param: str | None = None,
    start: Start = "latest",
    name: str | None = None,
) -> NatsTrigger:
    """Start a run per message (or per batch) on a NATS JetStream subject.

    A message not acknowledged within ``ack_wait`` (its run was not recorded) is redelivered.
    """
    if not subject:
        raise ValueError("nats_stream needs a subject")
    n, wait = _stream_common(batch, max_wait, param, start)
    label = name or "nats-" + subject.replace(".", "-").replace("*", "any").replace(">", "all")
    return NatsTrigger(
        label,
        url,
        n,
        wait,
        param,
        start,
        subject,
        durable,
        stream,
        create_stream,
        _seconds(ack_wait, "ack_wait"),
    )


def rabbitmq_queue(
    queue: str,
    *,
    url: str = "amqp://guest:guest@127.0.0.1:5672/",
    declare: bool = True,
    batch: int = 1,
    max_wait: str | float | timedelta = "1s",
    param: str | None = None,
    name: str | None = None,
) -> AmqpTrigger:
    """Start a run per message (or per batch) of a RabbitMQ queue.

    A message's body is JSON; it is acknowledged (basic_ack) once its run is recorded, so one
    held by a scheduler that dies is delivered again. ``declare``: make the queue (durable) if
    it does not exist; an existing queue is used as it is.
    """
    if not queue:
        raise ValueError("rabbitmq_queue needs a queue name")
    if not url.startswith(("amqp://", "amqps://")):
        raise ValueError(f"rabbitmq_queue needs an amqp:// or amqps:// url, got {url!r}")
    n, wait = _stream_common(batch, max_wait, param, "earliest")
    return AmqpTrigger(name or f"amqp-{queue}", url, n, wait, param, "earliest", queue, declare)


def mqtt_topic(
    topic: str,
    *,
    url: str = "mqtt://127.0.0.1:1883",
    client_id: str | None = None,
    session_expiry: str | float | timedelta = "7d",
    batch: int = 1,
    max_wait: str | float | timedelta = "1s",
    param: str | None = None,
    start: Start = "latest",
    name: str | None = None,
) -> MqttTrigger:
    """Start a run per message (or per batch) published on an MQTT topic (``+``/``#`` allowed).

    The scheduler subscribes at QoS 1 in a persistent session (MQTT 5, a fixed client id), so
    messages published while it is down wait for it, and acknowledges (PUBACK) a message once
    its run is recorded. ``url``: ``mqtt://[user:password@]host:port`` (``mqtts://`` for TLS).
    ``start="earliest"`` also takes the topic's retained message when first subscribing.
    """
    if not topic:
        raise ValueError("mqtt_topic needs a topic")
    if not url.startswith(("mqtt://", "mqtts://")):
        raise ValueError(f"mqtt_topic needs an mqtt:// or mqtts:// url, got {url!r}")
    n, wait = _stream_common(batch, max_wait, param, start)
    label = name or "mqtt-" + topic.strip("/").replace("/", "-").replace("+", "any").replace(
        "#", "all"
    )
    expiry = _seconds(session_expiry, "session_expiry")
    return MqttTrigger(label, url, n, wait, param, start, topic, client_id, expiry)
