"""Trigger listeners: one thread per file or stream trigger, turning events into runs.

A listener records the run (with the events that made it, under unique keys) before it
acknowledges the messages, so a crash in between redelivers messages whose run exists: the
listener then sees their keys recorded and only acknowledges them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from legato.definitions.triggering import (
    AmqpTrigger,
    FileTrigger,
    MqttTrigger,
    NatsTrigger,
    RedisStreamTrigger,
    StreamTrigger,
)
from legato.observability import metrics
from legato.scheduler.sources.event_source import StreamNotFound
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.definitions.triggering import Trigger
    from legato.domain.records import RunRecord
    from legato.scheduler.sources.event_source import Message, StreamSource
    from legato.services.automation_service import Automation
    from legato.store.faces import ListenerStore

log = logging.getLogger("legato.triggers")

OnRun = Callable[["RunRecord"], None]
#: How often a listener asks the store whether its trigger was paused.
PAUSE_CHECK_SECONDS = 2.0
#: How often a listener whose stream does not exist looks for it again (it says so once).
STREAM_LOOK_SECONDS = 10.0


class Listener(threading.Thread):
    """Base: a daemon thread that runs ``loop`` until ``stop()``, surviving errors."""

    def __init__(self, auto: Automation, pipe: Pipeline, trigger: Trigger, on_run: OnRun) -> None:
        super().__init__(name=f"trigger {pipe.name}/{trigger.name}", daemon=True)
        self.auto = auto
        self.pipe = pipe
        self.trigger = trigger
        self.on_run = on_run
        self.stopping = threading.Event()
        self._paused = False
        self._paused_checked = 0.0
        self.error: str | None = None  # the latest error, for status displays

    @property
    def _store(self) -> ListenerStore:
        return self.auto.ws.store

    def stop(self) -> None:
        self.stopping.set()

    def paused(self) -> bool:
        now = time.monotonic()
        if now - self._paused_checked >= PAUSE_CHECK_SECONDS:
            self._paused_checked = now
            st = self._store.triggers.trigger_states().get((self.pipe.name, self.trigger.name))
            self._paused = bool(st and st.paused)
        return self._paused

    def run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                self.loop()
                return
            except StreamNotFound as exc:
                # A setting to fix, not an outage: said once, then looked for quietly at the
                # rhythm the line gives, so a stream created later is still picked up.
                if self.error != str(exc):
                    log.error(
                        "%s: %s; looking for it again every %g s",
                        self.name,
                        exc,
                        STREAM_LOOK_SECONDS,
                    )
                self.error = str(exc)
                self.stopping.wait(STREAM_LOOK_SECONDS)
            except Exception as exc:  # a broker or store outage: wait and try again
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("%s: %s; retrying in %.1fs", self.name, self.error, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def loop(self) -> None:
        raise NotImplementedError

    def fire(
        self,
        event_keys: Sequence[str],
        params: dict[str, Any],
        key_hint: str,
        event_at: float | None = None,
    ) -> RunRecord | None:
        """Create the run for these events (once); None when the params were refused.

        ``event_at`` (seconds since the epoch): when the oldest event happened or was seen,
        for the trigger's lag metric."""
        run_key = f"trigger:{self.pipe.name}:{self.trigger.name}:{key_hint}"
        try:
            run, new = self.auto.fire(
                self.pipe.name,
                run_key=run_key,
                origin=f"trigger:{self.trigger.name}",
                params=params,
                trigger=self.trigger.name,
                event_keys=event_keys,
            )
        except ServiceError as exc:
            for key in event_keys:
                self.auto.record_failed_event(self.pipe.name, self.trigger.name, key, str(exc))
            log.warning("%s: event %s refused: %s", self.name, key_hint, exc)
            return None
        if new:
            if event_at is not None:
                lag = self.auto.ws.clock().timestamp() - event_at
                lagged = metrics.TRIGGER_LAG.labels(self.pipe.name, self.trigger.name)
                lagged.observe(max(0.0, lag))
            self.on_run(run)
        return run


class FileListener(Listener):
    """Lists a glob every ``interval`` seconds; each file not seen before makes one run."""

    trigger: FileTrigger

    def loop(self) -> None:
        from legato.scheduler.sources.files import FileSource

        glob = self.trigger.glob
        if "://" not in glob and not glob.startswith("/"):
            glob = str(self.auto.ws.config.root / glob)  # relative to the project, not the cwd
        source = FileSource(glob)
        while not self.stopping.is_set():
            if not self.paused():
                self.poll(source)
            self.stopping.wait(self.trigger.interval)

    def poll(self, source: Any) -> int:
        """One listing: a run for each new file; returns how many runs were made."""
        entries = source.list()
        paths = [e.path for e in entries]
        seen: set[str] = set()
        for i in range(0, len(paths), 500):
            seen |= self._store.triggers.seen_event_keys(
                self.pipe.name, self.trigger.name, paths[i : i + 500]
            )
        made = 0
        for entry in entries:
            if entry.path in seen or self.stopping.is_set():
                continue
            param = {self.trigger.param: entry.path}
            # The lag of a file counts from its last change: the listing interval is part of it.
            if self.fire([entry.path], param, _digest([entry.path]), entry.modified):
                made += 1
        return made


class StreamListener(Listener):
    """Fetches messages (or micro-batches) from a stream source; one run per fetch."""

    trigger: StreamTrigger

    def __init__(
        self,
        auto: Automation,
        pipe: Pipeline,
        trigger: StreamTrigger,
        on_run: OnRun,
        source_factory: Callable[[], StreamSource],
    ) -> None:
        super().__init__(auto, pipe, trigger, on_run)
        self.source_factory = source_factory
        self.source: StreamSource | None = None

    def stop(self) -> None:
        super().stop()
        if self.source is not None:
            self.source.close()

    def loop(self) -> None:
        self.source = source = self.source_factory()
        if self.error is not None:
            log.warning("%s: listening again", self.name)
            self.error = None
        try:
            while not self.stopping.is_set():
                if self.paused():
                    self.stopping.wait(PAUSE_CHECK_SECONDS)
                    continue
                messages = source.fetch(self.trigger.batch, self.trigger.max_wait)
                if messages:
                    self.handle(source, messages)
        finally:
            source.close()

    def handle(self, source: StreamSource, messages: Sequence[Message]) -> None:
        """Make the run for a fetch, then acknowledge every message of it."""
        seen = self._store.triggers.seen_event_keys(
            self.pipe.name, self.trigger.name, [m.id for m in messages]
        )
        fresh: list[tuple[str, Message]] = []
        payloads: list[Any] = []
        for key, m in _event_keys(messages, seen):
            if key is None:
                continue  # its run was recorded before a crash or a redelivery
            try:
                payloads.append(json.loads(m.data))
            except (ValueError, UnicodeDecodeError) as exc:
                self.auto.record_failed_event(
                    self.pipe.name, self.trigger.name, key, f"payload is not JSON: {exc}"
                )
                continue
            fresh.append((key, m))
        if fresh:
            param = self.trigger.param
            if param is None:
                params = payloads[0]
                if not isinstance(params, dict):
                    self.auto.record_failed_event(
                        self.pipe.name,
                        self.trigger.name,
                        fresh[0][0],
                        f"payload must be a JSON object of params, got {type(params).__name__}",
                    )
                    fresh = []
            else:
                params = {param: payloads if self.trigger.batch > 1 else payloads[0]}
            if fresh:
                ids = [key for key, _ in fresh]
                seen_at = min(m.received_at for _, m in fresh)
                self.fire(ids, params, ids[0] if len(ids) == 1 else _digest(ids), seen_at)
        source.ack(messages)


def _event_keys(
    messages: Sequence[Message], seen: set[str]
) -> list[tuple[str | None, Message]]:
    """Each message with the key to record its event under, or None when its event is
    recorded already.

    A message keyed by its broker id or by a key its publisher set is recorded when its key
    was seen. One keyed by its content (RabbitMQ and MQTT messages without such a key) may
    share its key with an earlier, distinct message: only a redelivery of it counts as
    recorded, and a message the broker never delivered before whose key is taken gets a key
    of its own. (A redelivery whose first delivery died before its run was recorded, and
    whose content equals an earlier message's, is then taken for that one: a publisher
    that may send identical messages should set a message id.)
    """
    out: list[tuple[str | None, Message]] = []
    taken = set(seen)
    for m in messages:
        if m.id not in taken:
            taken.add(m.id)
            out.append((m.id, m))
        elif m.content_keyed and not m.redelivered:
            unique = f"{m.id}@{time.time_ns()}.{len(out)}"
            taken.add(unique)
            out.append((unique, m))
        else:
            out.append((None, m))
    return out


def _digest(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]


def make_listener(
    auto: Automation, pipe: Pipeline, trigger: Trigger, on_run: OnRun
) -> Listener | None:
    """The listener thread for a trigger, or None for triggers handled elsewhere."""
    if isinstance(trigger, FileTrigger):
        return FileListener(auto, pipe, trigger, on_run)
    if isinstance(trigger, RedisStreamTrigger):
        redis_trigger = trigger

        def redis_source() -> StreamSource:
            import socket

            from legato.scheduler.sources.redis_streams import RedisStreamSource

            return RedisStreamSource(
                redis_trigger.url,
                redis_trigger.stream,
                redis_trigger.group or f"legato-{pipe.name}",
                socket.gethostname(),
                field=redis_trigger.field,
                start=redis_trigger.start,
            )

        return StreamListener(auto, pipe, trigger, on_run, redis_source)
    if isinstance(trigger, NatsTrigger):
        nats_trigger = trigger

        def nats_source() -> StreamSource:
            from legato.scheduler.sources.nats_jetstream import NatsJetStreamSource

            return NatsJetStreamSource(
                nats_trigger.url,
                nats_trigger.subject,
                nats_trigger.durable or f"legato-{pipe.name}-{nats_trigger.name}",
                stream=nats_trigger.stream,
                create_stream=nats_trigger.create_stream,
                ack_wait=nats_trigger.ack_wait,
                start=nats_trigger.start,
            )

        return StreamListener(auto, pipe, trigger, on_run, nats_source)
    if isinstance(trigger, AmqpTrigger):
        amqp_trigger = trigger

        def amqp_source() -> StreamSource:
            from legato.scheduler.sources.amqp_queue import AmqpQueueSource

            return AmqpQueueSource(
                amqp_trigger.url,
                amqp_trigger.queue,
                declare=amqp_trigger.declare,
                prefetch=amqp_trigger.batch,
            )

        return StreamListener(auto, pipe, trigger, on_run, amqp_source)
    if isinstance(trigger, MqttTrigger):
        mqtt_trigger = trigger
        client_id = mqtt_trigger.client_id or _mqtt_client_id(auto, pipe.name, trigger.name)

        def mqtt_source() -> StreamSource:
            from legato.scheduler.sources.mqtt_topic import MqttTopicSource

            return MqttTopicSource(
                mqtt_trigger.url,
                mqtt_trigger.topic,
                client_id,
                session_expiry=mqtt_trigger.session_expiry,
                start=mqtt_trigger.start,
            )

        return StreamListener(auto, pipe, trigger, on_run, mqtt_source)
    return None


def _mqtt_client_id(auto: Automation, pipeline: str, trigger: str) -> str:
    """The same on every start of this scheduler set-up (the project, the trigger, the host),
    so its persistent session is found again; different for another project or host."""
    import socket

    return f"legato-{auto.ws.config.name}-{pipeline}-{trigger}-{socket.gethostname()}"
