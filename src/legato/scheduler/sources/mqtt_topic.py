"""MQTT topic source: a QoS 1 subscription in a persistent MQTT 5 session, acknowledged by
hand, so a message is only PUBACKed once the scheduler has made its run."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from legato.scheduler.sources.event_source import Message, SourceError, one_line, redact_url

#: The user property (MQTT 5) whose value keys a message; publish_mqtt sets it.
KEY_PROPERTY = "idempotency-key"
_CONNECT_TIMEOUT = 10.0
# fetch() waits on its queue in slices this long so that close() is noticed promptly.
_WAIT_SLICE = 0.5


class MqttTopicSource:
    """Messages published on ``topic`` (a filter: ``+`` and ``#`` allowed), at least once.

    The session is persistent: client id ``client_id``, clean start off, kept by the broker
    ``session_expiry`` seconds after a disconnect. Messages published while nobody is
    connected wait in it, and a message delivered but not acknowledged (the scheduler died
    before recording its run) is delivered again on the next connection, marked ``dup``.
    paho's network loop reconnects by itself after a network failure.

    A message is keyed by its ``idempotency-key`` user property when it has one, else by its
    packet id and content (``content_keyed``). ``start="earliest"`` takes a retained message
    when the subscription is first made; ``"latest"`` never does.

    ``fetch()`` from one thread at a time; ``ack()`` and ``close()`` from any thread.
    """

    def __init__(
        self,
        url: str,
        topic: str,
        client_id: str,
        *,
        session_expiry: float = 7 * 86400.0,
        start: Literal["latest", "earliest"] = "latest",
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        from paho.mqtt.subscribeoptions import SubscribeOptions

        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise SourceError(f"invalid MQTT URL {redact_url(url)}: expected mqtt://host:port")
        self.url = url
        self.topic = topic
        self.client_id = client_id
        self._where = f"MQTT topic {topic!r} (client {client_id!r}) at {redact_url(url)}"
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._closed = False
        self._options = SubscribeOptions(
            qos=1,
            retainHandling=(
                SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
                if start == "earliest"
                else SubscribeOptions.RETAIN_DO_NOT_SEND
            ),
        )
        self._client = client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            client.tls_set()
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = min(int(session_expiry), 0xFFFFFFFF)
        self._connected = threading.Event()
        self._refused: str | None = None
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        try:
            client.connect(parts.hostname, port, 60, clean_start=False, properties=props)
        except OSError as exc:
            raise SourceError(f"cannot connect to {self._where}: {one_line(exc)}") from exc
        client.loop_start()
        if not self._connected.wait(_CONNECT_TIMEOUT) or self._refused:
            client.loop_stop()
            client.disconnect()
            reason = self._refused or f"no answer within {_CONNECT_TIMEOUT:g} s"
            raise SourceError(f"cannot connect to {self._where}: {reason}")

    def __repr__(self) -> str:
        return f"MqttTopicSource({self._where})"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._connected.set()
        else:
            # The session keeps the subscription; subscribing again on each connection covers
            # a broker that lost it (one without persistence, restarted).
            client.subscribe(self.topic, options=self._options)

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        # Ready once the broker confirmed the subscription: from then on nothing is missed.
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._refused = f"subscription refused: {failed[0]}"
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        keyed = dict(getattr(msg.properties, "UserProperty", None) or ()).get(KEY_PROPERTY)
        if keyed:
            key, by_content = f"key:{keyed}", False
        else:
            digest = hashlib.sha256(msg.topic.encode() + b"\0" + msg.payload).hexdigest()[:32]
            key, by_content = f"{msg.mid}:{digest}", True
        self._inbox.put(
            Message(
                key,
                msg.payload,
                time.time(),
                redelivered=bool(msg.dup),
                content_keyed=by_content,
                handle=msg.mid,
            )
        )

    def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``max_wait`` seconds (see
        :meth:`StreamSource.fetch`)."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages!r}")
        deadline = time.monotonic() + max(max_wait, 0.0)
        out: list[Message] = []
        while not self._closed and len(out) < max_messages:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    item = self._inbox.get_nowait()
                else:
                    item = self._inbox.get(timeout=min(remaining, _WAIT_SLICE))
            except queue.Empty:
                if remaining <= 0:
                    break
                continue
            if item is None:  # close() woke us
                break
            out.append(item)
        return [] if self._closed else out

    def ack(self, messages: Sequence[Message]) -> None:
        """PUBACK each message: the broker drops it from the session."""
        if not messages:
            return
        if self._closed:
            raise SourceError(f"cannot acknowledge on {self._where}: the source is closed")
        for m in messages:
            if m.handle is None:
                continue
            rc = self._client.ack(m.handle, 1)
            if rc != 0:
                raise SourceError(f"cannot acknowledge on {self._where}: error {rc}")

    def close(self) -> None:
        """Stop; idempotent. The session (and what it holds unacknowledged) stays."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put(None)
        self._client.disconnect()
        self._client.loop_stop()
