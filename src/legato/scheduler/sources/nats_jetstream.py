"""NATS JetStream source: a durable pull consumer with explicit acks, behind a sync API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from legato.scheduler.sources.event_source import (
    Message,
    SourceError,
    StreamNotFound,
    one_line,
    redact_url,
)

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_CONNECT_TIMEOUT = 2.0
_REQUEST_TIMEOUT = 5.0  # JetStream API calls and synchronous acks
# A pull request needs a round trip; shorter ones expire before the server can answer.
_MIN_PULL = 0.05


class NatsJetStreamSource:
    """Pull messages published on ``subject`` through a durable JetStream pull consumer.

    The stream is the one holding ``subject`` unless ``stream`` names it. When no stream exists
    and ``create_stream`` is true, one is created: named ``stream``, or else after the subject
    with characters other than letters, digits, ``_`` and ``-`` replaced by ``_``.

    The durable consumer is created on first use with explicit acks, ``ack_wait`` and the
    ``start`` position (``"latest"``: only messages published from then on; ``"earliest"``:
    everything in the stream); an existing durable keeps its own configuration and position.
    A message not acknowledged within ``ack_wait`` seconds is delivered again, to this or
    another instance using the same durable, so a crash before the ack loses nothing.

    nats-py is asyncio-based: the source runs a private event loop in a daemon thread and
    every public method is a synchronous bridge onto it. Call ``fetch()`` from one thread at a
    time; ``ack()`` and ``close()`` may be called from any thread.
    """

    def __init__(
        self,
        url: str,
        subject: str,
        durable: str,
        *,
        stream: str | None = None,
        create_stream: bool = False,
        ack_wait: float = 30.0,
        start: Literal["latest", "earliest"] = "latest",
    ) -> None:
        if start not in ("latest", "earliest"):
            raise ValueError(f"start must be 'latest' or 'earliest', not {start!r}")
        if ack_wait <= 0:
            raise ValueError(f"ack_wait must be positive, not {ack_wait!r}")
        self.url = url
        self.subject = subject
        self.durable = durable
        self.stream = stream or ""
        self._where = f"NATS subject {subject!r} (durable {durable!r}) at {redact_url(url)}"
        self._lock = threading.Lock()
        self._closed = False
        self._connecting = True
        self._inflight: set[concurrent.futures.Future[Any]] = set()
        # Delivered but not yet acknowledged, by Message.id: only the nats Msg can ack itself.
        self._unacked: dict[str, Msg] = {}
        self._nc: Client | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"legato-nats-{durable}", daemon=True
        )
        self._thread.start()
        try:
            self._nc = self._run(self._connect(), _CONNECT_TIMEOUT + 1.0)
            self._sub = self._run(
                self._subscribe(stream, create_stream, ack_wait, start), 3 * _REQUEST_TIMEOUT
            )
        except BaseException:
            self._shutdown()
            raise

    def __repr__(self) -> str:
        return f"NatsJetStreamSource({self._where}, stream {self.stream!r})"

    def __enter__(self) -> NatsJetStreamSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``max_wait`` seconds.

        See :meth:`StreamSource.fetch` for the micro-batch semantics. Returns ``[]`` on timeout
        or once :meth:`close` was called. Raises :class:`SourceError` when NATS fails.
        """
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages!r}")
        if self._closed:
            return []
        deadline = time.monotonic() + max(max_wait, 0.0)
        try:
            msgs = self._run(self._fetch(max_messages, deadline), max_wait + _REQUEST_TIMEOUT)
        except concurrent.futures.CancelledError:
            return []  # close() cancelled the pull; anything pulled is redelivered later
        except SourceError:
            raise
        except Exception as exc:
            if self._closed:
                return []
            raise SourceError(f"cannot fetch from {self._where}: {one_line(exc)}") from exc
        now = time.time()
        out: dict[str, Message] = {}
        with self._lock:
            if self._closed:
                return []
            for msg in msgs:
                meta = msg.metadata
                message_id = f"{self.stream}:{meta.sequence.stream}"
                # Keep the newest delivery: an ack must answer the latest one.
                self._unacked[message_id] = msg
                if message_id not in out:
                    out[message_id] = Message(message_id, msg.data, now, meta.num_delivered > 1)
        return list(out.values())

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge ``messages``, waiting for the server to confirm each ack.

        Only messages fetched from this instance can be acknowledged; other ids (including
        ones already acknowledged) are ignored. Raises :class:`SourceError` after
        :meth:`close` or when an ack fails; unacknowledged messages are redelivered after
        ``ack_wait``.
        """
        if not messages:
            return
        if self._closed:
            raise SourceError(f"cannot acknowledge on {self._where}: the source is closed")
        with self._lock:
            targets = {m.id: self._unacked[m.id] for m in messages if m.id in self._unacked}
        if not targets:
            return
        try:
            results = self._run(self._ack(list(targets.values())), 2 * _REQUEST_TIMEOUT)
        except (Exception, concurrent.futures.CancelledError) as exc:
            raise SourceError(f"cannot acknowledge on {self._where}: {one_line(exc)}") from exc
        with self._lock:
            for (message_id, msg), result in zip(targets.items(), results, strict=True):
                if result is None and self._unacked.get(message_id) is msg:
                    del self._unacked[message_id]
        failed = [result for result in results if result is not None]
        if failed:
            raise SourceError(
                f"cannot acknowledge {len(failed)} of {len(targets)} messages on {self._where}:"
                f" {one_line(failed[0])}"
            )

    def close(self) -> None:
        """Stop: cancel a blocked :meth:`fetch`, close the connection and the loop thread.

        Idempotent and thread-safe. Unacknowledged messages are redelivered after ``ack_wait``.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            inflight = list(self._inflight)
        for future in inflight:
            future.cancel()
        self._shutdown()

    def _run(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        """Run ``coro`` on the loop thread and wait for it; close() cancels it."""
        with self._lock:
            # Under the lock, close() either sees this future or has already stopped us here.
            if self._closed:
                coro.close()
                raise concurrent.futures.CancelledError
            future = asyncio.run_coroutine_threadsafe(self._quiet_on_close(coro), self._loop)
            self._inflight.add(future)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SourceError(f"{self._where} did not answer within {timeout:g} s") from None
        finally:
            with self._lock:
                self._inflight.discard(future)

    async def _quiet_on_close(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """``coro``, except that an error it ends with once close() began counts as cancelled.

        close() cancels the call's future, and nobody reads the outcome after that; nats-py
        answers the cancel with ConnectionClosedError, which asyncio would then log as a
        "Task exception was never retrieved" traceback on an ordinary stop.
        """
        try:
            return await coro
        except Exception:
            if self._closed:
                raise asyncio.CancelledError from None
            raise

    def _shutdown(self) -> None:
        nc = self._nc
        if nc is not None and not nc.is_closed:
            try:
                asyncio.run_coroutine_threadsafe(nc.close(), self._loop).result(_CONNECT_TIMEOUT)
            except Exception as exc:
                _log.warning("closing %s: %s", self._where, one_line(exc))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CONNECT_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()
        with self._lock:
            self._unacked.clear()

    async def _connect(self) -> Client:
        from nats.aio.client import Client

        first_error: asyncio.Future[Any] = self._loop.create_future()

        async def on_error(exc: Exception) -> None:
            # While connecting, the first error ends the attempt (nats-py would keep retrying).
            if self._connecting:
                if not first_error.done():
                    first_error.set_result(exc)
            else:
                _log.warning("%s: %s", self._where, one_line(exc))

        nc = Client()
        attempt: asyncio.Future[None] = asyncio.ensure_future(
            nc.connect(
                self.url,
                error_cb=on_error,
                connect_timeout=int(_CONNECT_TIMEOUT),
                name=f"legato:{self.durable}",
            )
        )
        done, _ = await asyncio.wait(
            {attempt, first_error}, timeout=_CONNECT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if attempt in done and attempt.exception() is None:
            self._connecting = False
            return nc
        if attempt in done:
            reason = one_line(attempt.exception() or RuntimeError())
        elif first_error.done():
            reason = one_line(first_error.result())
        else:
            reason = f"no answer within {_CONNECT_TIMEOUT:g} s"
        attempt.cancel()
        await asyncio.gather(attempt, return_exceptions=True)
        await asyncio.gather(asyncio.wait_for(nc.close(), 1.0), return_exceptions=True)
        raise SourceError(f"cannot connect to NATS at {redact_url(self.url)}: {reason}")

    async def _subscribe(
        self, stream: str | None, create: bool, ack_wait: float, start: str
    ) -> JetStreamContext.PullSubscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        assert self._nc is not None
        js = self._nc.jetstream(timeout=_REQUEST_TIMEOUT)
        try:
            if stream is None:
                try:
                    stream = await js.find_stream_name_by_subject(self.subject)
                except NotFoundError:
                    if not create:
                        raise StreamNotFound(
                            f"no JetStream stream holds {self._where}: create one, or pass"
                            " create_stream=True to nats_stream()"
                        ) from None
                    stream = re.sub(r"[^A-Za-z0-9_-]", "_", self.subject)
                    await js.add_stream(name=stream, subjects=[self.subject])
            else:
                try:
                    await js.stream_info(stream)
                except NotFoundError:
                    if not create:
                        raise StreamNotFound(
                            f"JetStream stream {stream!r} for {self._where} does not exist:"
                            " create it, or pass create_stream=True to nats_stream()"
                        ) from None
                    await js.add_stream(name=stream, subjects=[self.subject])
            self.stream = stream
            config = ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ack_wait,
                deliver_policy=DeliverPolicy.NEW if start == "latest" else DeliverPolicy.ALL,
            )
            return await js.pull_subscribe(
                self.subject, durable=self.durable, stream=stream, config=config
            )
        except SourceError:
            raise
        except Exception as exc:
            where = f"{self._where}, stream {stream!r}" if stream else self._where
            raise SourceError(f"cannot subscribe to {where}: {one_line(exc)}") from exc

    async def _fetch(self, max_messages: int, deadline: float) -> list[Msg]:
        out: list[Msg] = []
        first = True
        while len(out) < max_messages and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining < _MIN_PULL:
                if not first:
                    break
                remaining = _MIN_PULL  # max_wait=0 still asks the server once
            first = False
            try:
                out += await self._sub.fetch(batch=max_messages - len(out), timeout=remaining)
            except TimeoutError:  # nats' "no messages" (it subclasses asyncio.TimeoutError)
                continue
        return out

    async def _ack(self, msgs: list[Msg]) -> list[BaseException | None]:
        from nats.errors import MsgAlreadyAckdError

        async def one(msg: Msg) -> BaseException | None:
            try:
                await msg.ack_sync(timeout=_REQUEST_TIMEOUT)
            except MsgAlreadyAckdError:
                return None
            except Exception as exc:
                return exc
            return None

        return list(await asyncio.gather(*(one(m) for m in msgs)))
