"""Redis Streams source: a consumer group with at-least-once delivery that survives restarts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from legato.scheduler.sources.event_source import Message, SourceError, one_line, redact_url

if TYPE_CHECKING:
    import redis

# A blocking XREADGROUP cannot be interrupted from another thread without tearing the socket
# down under it, so fetch() blocks in slices this long and checks the closed flag in between.
_BLOCK_SLICE = 0.5
# Sweeps for stranded entries run at least this often (seconds), even with a long claim_idle.
_MAX_CLAIM_INTERVAL = 5.0


class RedisStreamSource:
    """Pull messages from a Redis stream through a consumer group.

    The group is created if missing, at the end of the stream for ``start="latest"`` or at its
    beginning for ``"earliest"`` (an existing group keeps its position). Delivery is
    at-least-once:

    * the first ``fetch()`` replays this consumer's own unacknowledged entries (left over from a
      previous process with the same ``consumer`` name), marked ``redelivered``;
    * entries pending on any consumer of the group - including this one - for longer than
      ``claim_idle`` seconds are claimed (XAUTOCLAIM) and delivered again, so a consumer that
      died holding entries does not strand them. ``claim_idle`` therefore plays the role of an
      ack deadline: it must exceed the time between fetching a message and acknowledging it;
    * entries deleted from the stream while pending are acknowledged and skipped.

    ``Message.data`` is the entry's ``field`` value or, when the entry has no such field, the
    JSON encoding of all its fields as a string-to-string object.

    Call ``fetch()`` from one thread at a time; ``ack()`` and ``close()`` may be called from
    any thread.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        group: str,
        consumer: str,
        *,
        field: str = "payload",
        start: Literal["latest", "earliest"] = "latest",
        claim_idle: float = 30.0,
    ) -> None:
        if start not in ("latest", "earliest"):
            raise ValueError(f"start must be 'latest' or 'earliest', not {start!r}")
        if claim_idle <= 0:
            raise ValueError(f"claim_idle must be positive, not {claim_idle!r}")
        import redis

        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self._field = field.encode()
        self._claim_idle = claim_idle
        self._error: type[Exception] = redis.RedisError
        self._where = f"Redis stream {stream!r} (group {group!r}) at {redact_url(url)}"
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                decode_responses=False,
                socket_connect_timeout=2.0,
                # Must comfortably exceed the longest BLOCK we send.
                socket_timeout=_BLOCK_SLICE + 10.0,
            )
        except ValueError as exc:
            raise SourceError(f"invalid Redis URL {redact_url(url)}: {one_line(exc)}") from exc
        try:
            self._client.xgroup_create(
                stream, group, id="$" if start == "latest" else "0", mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                self._client.close()
                raise SourceError(f"cannot use {self._where}: {one_line(exc)}") from exc
        except redis.RedisError as exc:
            self._client.close()
            raise SourceError(f"cannot connect to {self._where}: {one_line(exc)}") from exc

        self._lock = threading.Lock()
        self._closed = False
        self._active_fetches = 0
        self._replay_cursor: str | None = "0"  # None once own pending entries are replayed
        self._claim_cursor = "0-0"
        self._next_claim = 0.0  # time.monotonic() when the next stranded-entry sweep is due

    def __repr__(self) -> str:
        return f"RedisStreamSource({self._where}, consumer {self.consumer!r})"

    def __enter__(self) -> RedisStreamSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``max_wait`` seconds.

        See :meth:`StreamSource.fetch` for the micro-batch semantics. Returns ``[]`` on timeout
        or once :meth:`close` was called. Raises :class:`SourceError` when Redis fails.
        """
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages!r}")
        with self._lock:
            if self._closed:
                return []
            self._active_fetches += 1
        try:
            return self._fetch(max_messages, time.monotonic() + max(max_wait, 0.0))
        except self._error as exc:
            if self._closed:
                return []
            raise SourceError(f"cannot read {self._where}: {one_line(exc)}") from exc
        finally:
            with self._lock:
                self._active_fetches -= 1
                release = self._closed and self._active_fetches == 0
            if release:
                self._client.close()

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge ``messages`` (XACK): the group never delivers them again.

        Raises :class:`SourceError` after :meth:`close` or when Redis fails; the messages are
        then redelivered later, as if never acknowledged.
        """
        if not messages:
            return
        if self._closed:
            raise SourceError(f"cannot acknowledge on {self._where}: the source is closed")
        try:
            self._client.xack(self.stream, self.group, *[m.id for m in messages])
        except self._error as exc:
            raise SourceError(f"cannot acknowledge on {self._where}: {one_line(exc)}") from exc

    def close(self) -> None:
        """Stop: a blocked :meth:`fetch` returns ``[]`` within about half a second.

        Idempotent and thread-safe. Unacknowledged messages stay pending in the group.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._active_fetches == 0
        # A fetch in progress still uses the connection; the last one out releases it.
        if idle:
            self._client.close()

    def _fetch(self, max_messages: int, deadline: float) -> list[Message]:
        out: list[Message] = []
        seen: set[str] = set()
        if self._replay_cursor is not None:
            self._replay_own(out, seen, max_messages)
        while not self._closed and len(out) < max_messages:
            if time.monotonic() >= self._next_claim:
                self._claim_stranded(out, seen, max_messages)
                if len(out) >= max_messages:
                    break
            remaining = deadline - time.monotonic()
            block_ms = int(min(remaining, _BLOCK_SLICE) * 1000)
            # BLOCK 0 would mean "forever"; with no time left do one non-blocking read.
            reply = self._client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=max_messages - len(out),
                block=block_ms if block_ms > 0 else None,
            )
            self._collect(_entries(reply), out, seen, redelivered=False)
            if time.monotonic() >= deadline:
                break
        return [] if self._closed else out

    def _replay_own(self, out: list[Message], seen: set[str], max_messages: int) -> None:
        """Deliver this consumer's pending entries, continuing where the last call stopped."""
        while self._replay_cursor is not None and len(out) < max_messages:
            entries = _entries(
                self._client.xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: self._replay_cursor},
                    count=max_messages - len(out),
                )
            )
            if not entries:
                self._replay_cursor = None
                return
            self._replay_cursor = _text(entries[-1][0])
            self._collect(entries, out, seen, redelivered=True)

    def _claim_stranded(self, out: list[Message], seen: set[str], max_messages: int) -> None:
        """Take over entries idle longer than claim_idle; one full sweep per interval."""
        min_idle_ms = max(1, int(self._claim_idle * 1000))
        while len(out) < max_messages:
            reply: Any = self._client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_ms,
                start_id=self._claim_cursor,
                count=max_messages - len(out),
            )
            # Redis 7 adds a third element: ids it dropped from the PEL as deleted; nothing to do.
            self._claim_cursor = _text(reply[0])
            self._collect(reply[1], out, seen, redelivered=True)
            if self._claim_cursor == "0-0":
                interval = min(self._claim_idle, _MAX_CLAIM_INTERVAL)
                self._next_claim = time.monotonic() + interval
                return
        # The batch filled up mid-sweep: the next fetch continues from the cursor.

    def _collect(
        self, entries: list[Any], out: list[Message], seen: set[str], *, redelivered: bool
    ) -> None:
        now = time.time()
        deleted: list[str] = []
        for raw_id, fields in entries:
            if raw_id is None:
                continue
            entry_id = _text(raw_id)
            # XADD needs at least one field, so no fields means the entry was deleted.
            if not fields:
                deleted.append(entry_id)
            elif entry_id not in seen:
                seen.add(entry_id)
                out.append(Message(entry_id, self._payload(fields), now, redelivered))
        if deleted:
            self._client.xack(self.stream, self.group, *deleted)

    def _payload(self, fields: dict[bytes, bytes]) -> bytes:
        value = fields.get(self._field)
        if value is not None:
            return value
        as_text = {_text(k): _text(v) for k, v in fields.items()}
        return json.dumps(as_text, ensure_ascii=False, separators=(",", ":")).encode()


def _entries(reply: Any) -> list[Any]:
    """The (id, fields) pairs of a single-stream XREADGROUP reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3: {stream: [[(id, fields), ...]]}
        return list(next(iter(reply.values()))[0])
    return list(reply[0][1])  # RESP2: [[stream, [(id, fields), ...]]]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
