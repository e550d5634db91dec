"""The ``amqp`` kind: a RabbitMQ connection (pika) that the threads of a worker share.

    [resources.broker]
    kind = "amqp"
    url = "amqp://guest:guest@127.0.0.1:5672/"     # amqps:// for TLS; ?heartbeat=30 etc.
    check_queue = "orders"                         # optional: `legato resources check` looks
                                                   # it up (passively) instead of amq.direct

A task gets an :class:`AmqpClient`: ``with broker.channel() as ch:`` lends it a pika channel,
``with broker.transaction() as (ch, returned):`` a new transactional one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from legato.domain.urls import redact_url as redact
from legato.resources.kind import ResourceError, ResourceKind

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel


class AmqpClient:
    """One pika ``BlockingConnection`` behind a lock, opened again when it dropped.

    pika's blocking connection belongs to one thread at a time, so every use goes through
    :meth:`channel`, which holds the lock while the caller has the channel. A connection the
    broker or the network closed (a restart, missed heartbeats while the worker was idle) is
    noticed when the channel is lent and replaced by a new one; a connection error while the
    caller holds the channel drops it, so the next use connects afresh.
    """

    def __init__(self, url: str, name: str = "legato") -> None:
        import pika

        self.url = url
        self._params = pika.URLParameters(url)
        self._params.client_properties = {"connection_name": name}
        self._lock = threading.RLock()
        self._conn: pika.BlockingConnection | None = None
        self._channels: dict[bool, BlockingChannel] = {}
        #: How many connections were opened (the first one included).
        self.connects = 0

    def __repr__(self) -> str:
        return f"AmqpClient({redact(self.url)})"

    @contextmanager
    def channel(self, *, confirm: bool = False) -> Iterator[BlockingChannel]:
        """A channel of the live connection, the client's lock held until the block ends.

        ``confirm``: a channel in publisher-confirm mode, where ``basic_publish`` returns once
        the broker has taken the message (and raises when it refused or returned it).
        """
        import pika.exceptions as errors

        with self._lock:
            ch = self._lend(confirm)
            try:
                yield ch
            except errors.AMQPConnectionError:
                self._drop()
                raise
            except errors.AMQPChannelError:
                self._channels.pop(confirm, None)  # the broker closed it; the next use opens one
                raise

    @contextmanager
    def transaction(self) -> Iterator[tuple[BlockingChannel, list[str]]]:
        """A new channel in transaction mode (``tx_select``), the lock held, closed after the
        block; with it the list of the ``message_id`` of each mandatory message RabbitMQ
        returned as unroutable, filled in by :meth:`settle` after a ``tx_commit``."""
        import pika.exceptions as errors

        returned: list[str] = []
        with self._lock:
            ch = self._live().channel()
            try:
                ch.add_on_return_callback(
                    lambda _ch, _method, props, _body: returned.append(props.message_id or "")
                )
                ch.tx_select()
                yield ch, returned
            except errors.AMQPConnectionError:
                self._drop()
                raise
            finally:
                if ch.is_open:
                    with contextlib.suppress(errors.AMQPError):
                        ch.close()

    def settle(self) -> None:
        """Hand out what the broker sent and is waiting (such as returned messages, which
        arrive before the ``tx_commit`` answer) to the channels' callbacks."""
        with self._lock:
            if self._conn is not None and self._conn.is_open:
                self._conn.process_data_events(time_limit=0)

    def connection(self) -> pika.BlockingConnection:
        """The live connection (opened again if it dropped); hold :meth:`channel` or be the
        only thread using the client."""
        with self._lock:
            return self._live()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._drop()

    def _lend(self, confirm: bool) -> BlockingChannel:
        conn = self._live()
        ch = self._channels.get(confirm)
        if ch is None or not ch.is_open:
            ch = conn.channel()
            if confirm:
                ch.confirm_delivery()
            self._channels[confirm] = ch
        return ch

    def _live(self) -> pika.BlockingConnection:
        import pika
        import pika.exceptions as errors

        if self._conn is not None and self._conn.is_open:
            try:
                # Reads what waits on the socket: a dropped connection shows here, before a
                # caller's publish would fail on it.
                self._conn.process_data_events(time_limit=0)
            except errors.AMQPConnectionError:
                self._drop()
        if self._conn is None or not self._conn.is_open:
            self._drop()
            try:
                self._conn = pika.BlockingConnection(self._params)
            except errors.AMQPConnectionError as exc:
                raise ResourceError(
                    f"cannot connect to RabbitMQ at {redact(self.url)}: {_say(exc)}"
                ) from exc
            self.connects += 1
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._channels.clear()
        if conn is not None and conn.is_open:
            # Already half gone: nothing more to release.
            with contextlib.suppress(Exception):
                conn.close()


def _say(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or repr(exc)
    return text if len(text) < 300 else text[:300] + "..."


class AmqpResource(ResourceKind):
    """RabbitMQ at ``url``; tasks get an :class:`AmqpClient`."""

    kind: ClassVar[str] = "amqp"
    settings_keys: ClassVar[frozenset[str]] = frozenset({"url", "check_queue"})

    def validate(self) -> None:
        url = self.require("url")
        if not url.startswith(("amqp://", "amqps://")):
            raise ResourceError(
                f"resource {self.name!r} (amqp): url must start with amqp:// or amqps://, "
                f"got {redact(url)!r}"
            )
        self.option("check_queue", str, None)

    def open(self) -> AmqpClient:
        return AmqpClient(self.settings["url"], name=f"legato:{self.name}")

    def check(self, client: Any) -> str:
        queue = self.settings.get("check_queue")
        with client.channel() as ch:
            if queue:
                ok = ch.queue_declare(queue, passive=True)
                return f"queue {queue!r} holds {ok.method.message_count} messages"
            ch.exchange_declare("amq.direct", passive=True)
        return f"connected to {redact(self.settings['url'])}"
