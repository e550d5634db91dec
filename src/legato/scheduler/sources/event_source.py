"""What every event source hands to the scheduler: messages, the pull protocol and its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Re-exported: the sources name a URL in their messages with it.
from legato.domain.urls import redact_url as redact_url


@dataclass(frozen=True)
class Message:
    """One message fetched from a stream source.

    ``id`` is unique and stable across redeliveries within the source (a Redis entry id such as
    ``"1700000000000-0"``; for NATS ``"<stream>:<stream sequence>"``), so callers can use it to
    deduplicate. ``received_at`` is ``time.time()`` when the message was fetched, for latency
    measurements. ``redelivered`` is true when the source has handed this message out before
    (to this or another consumer) without it being acknowledged.

    Brokers that give a message no id of their own (RabbitMQ, MQTT) key it by what the
    publisher set (a ``message_id``, an ``idempotency-key`` property) or else by its content:
    ``content_keyed`` says the latter, when two distinct messages may share an ``id`` and only
    ``redelivered`` tells a repeat from a new message. ``handle`` is what the source needs to
    acknowledge this delivery (an AMQP delivery tag, an MQTT packet id).
    """

    id: str
    data: bytes
    received_at: float
    redelivered: bool = False
    content_keyed: bool = False
    handle: int | None = None


@runtime_checkable
class StreamSource(Protocol):
    """A pull-based, at-least-once message source with explicit acknowledgement."""

    def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """Block until at least one message is available or ``max_wait`` seconds pass.

        Then return up to ``max_messages``. When ``max_messages > 1`` this is a micro-batch:
        after the first message arrives, keep collecting until ``max_messages`` are in hand or
        ``max_wait`` seconds have passed since the call began. Returns ``[]`` on timeout or once
        ``close()`` was called.
        """
        ...

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge: these messages are never delivered again to this group / durable."""
        ...

    def close(self) -> None:
        """Stop; safe to call from another thread while ``fetch()`` blocks.

        A blocked ``fetch()`` then returns promptly (within about a second).
        """
        ...


class SourceError(Exception):
    """A connection or configuration problem; the message is one line naming the URL/stream."""


class StreamNotFound(SourceError):
    """The stream to read does not exist: a setting to fix, not an outage to wait out.

    The message is one line that says how to fix it.
    """


def one_line(exc: BaseException) -> str:
    """A single-line description of ``exc`` (type name when the message is empty)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
