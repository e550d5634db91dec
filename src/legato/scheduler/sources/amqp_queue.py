"""RabbitMQ queue source: a consumer with manual acknowledgements and a prefetch window."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from legato.scheduler.sources.event_source import (
    Message,
    SourceError,
    StreamNotFound,
    one_line,
    redact_url,
)

if TYPE_CHECKING:
    import pika

# pika's blocking connection cannot be woken from another thread, so fetch() waits for
# deliveries in slices this long and checks the closed flag in between.
_WAIT_SLICE = 0.5


class AmqpQueueSource:
    """Consume ``queue`` with manual acks, at most ``prefetch`` messages unacknowledged.

    RabbitMQ hands a message that a consumer held unacknowledged when its connection closed
    (a crash, a network cut) to the next consumer, marked redelivered. A message is keyed by
    its ``message_id`` when the publisher set one (``publish_amqp`` does), else by its body.

    With ``declare`` a missing queue is declared durable; without it a missing queue raises
    :class:`StreamNotFound`. A queue that exists is used as it is (its own arguments).

    The connection belongs to the thread that made the source: call ``fetch()`` and ``ack()``
    from it. ``close()`` may be called from any thread: a blocked ``fetch()`` then returns
    ``[]`` within about half a second, and the owning thread's next call closes the connection.
    """

    def __init__(self, url: str, queue: str, *, declare: bool = True, prefetch: int = 1) -> None:
        import pika
        import pika.exceptions as errors

        self.url = url
        self.queue = queue
        self._where = f"RabbitMQ queue {queue!r} at {redact_url(url)}"
        self._owner = threading.get_ident()
        self._closed = False
        self._released = False
        self._buffer: deque[Message] = deque()
        params = pika.URLParameters(url)
        params.client_properties = {"connection_name": f"legato trigger {queue}"}
        try:
            self._conn: pika.BlockingConnection = pika.BlockingConnection(params)
        except errors.AMQPError as exc:
            raise SourceError(f"cannot connect to {self._where}: {one_line(exc)}") from exc
        try:
            self._channel = self._open_queue(declare)
            self._channel.basic_qos(prefetch_count=max(1, prefetch))
            self._channel.basic_consume(queue, self._on_message, auto_ack=False)
        except SourceError:
            self._release()
            raise
        except errors.AMQPError as exc:
            self._release()
            raise SourceError(f"cannot consume from {self._where}: {one_line(exc)}") from exc

    def __repr__(self) -> str:
        return f"AmqpQueueSource({self._where})"

    def _open_queue(self, declare: bool) -> Any:
        import pika.exceptions as errors

        ch = self._conn.channel()
        try:
            ch.queue_declare(self.queue, passive=True)
            return ch
        except errors.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
        if not declare:
            raise StreamNotFound(
                f"{self._where} does not exist: declare it, or pass declare=True to "
                "rabbitmq_queue()"
            )
        ch = self._conn.channel()  # the broker closed the one the lookup used
        ch.queue_declare(self.queue, durable=True)
        return ch

    def _on_message(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        self._buffer.append(
            Message(
                message_key(props.message_id, body),
                body,
                time.time(),
                redelivered=bool(method.redelivered),
                content_keyed=not props.message_id,
                handle=int(method.delivery_tag),
            )
        )

    def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``max_wait`` seconds (see
        :meth:`StreamSource.fetch`). Raises :class:`SourceError` when RabbitMQ fails."""
        import pika.exceptions as errors

        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages!r}")
        if self._closed:
            self._release()
            return []
        deadline = time.monotonic() + max(max_wait, 0.0)
        try:
            while not self._closed and len(self._buffer) < max_messages:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._conn.process_data_events(time_limit=min(remaining, _WAIT_SLICE))
                if self._buffer and max_messages == 1:
                    break
        except errors.AMQPError as exc:
            if self._closed:
                return []
            raise SourceError(f"cannot read {self._where}: {one_line(exc)}") from exc
        if self._closed:
            self._release()
            return []
        return [self._buffer.popleft() for _ in range(min(max_messages, len(self._buffer)))]

    def ack(self, messages: Sequence[Message]) -> None:
        """basic_ack each message: RabbitMQ never delivers it again. Raises
        :class:`SourceError` when that fails; the messages are then delivered again."""
        import pika.exceptions as errors

        if not messages:
            return
        if self._closed:
            raise SourceError(f"cannot acknowledge on {self._where}: the source is closed")
        try:
            for m in messages:
                self._channel.basic_ack(m.handle)
            # Sends the acks now rather than with the next read.
            self._conn.process_data_events(time_limit=0)
        except errors.AMQPError as exc:
            raise SourceError(f"cannot acknowledge on {self._where}: {one_line(exc)}") from exc

    def close(self) -> None:
        """Stop; idempotent. Unacknowledged messages go back to the queue."""
        self._closed = True
        if threading.get_ident() == self._owner:
            self._release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        conn = self._conn if hasattr(self, "_conn") else None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # a connection already gone has nothing left to release
                return


def message_key(message_id: str | None, body: bytes) -> str:
    """The event key of an AMQP message (what :class:`AmqpQueueSource` gives as its id)."""
    if message_id:
        return f"id:{message_id}"
    return f"sha:{hashlib.sha256(body).hexdigest()[:32]}"
