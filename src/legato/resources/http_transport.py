"""Retries and a rate limit for httpx, as a transport every request of a client goes through.

The ``http`` kind wraps its client's transport in ``RetryTransport``; any httpx client may do
the same::

    client = httpx.Client(transport=RetryTransport(httpx.HTTPTransport(), retries=5,
                                                   limiter=RateLimiter(10)))

What is retried, and when:

- a 429 answer, always (the server refused the request without doing it), and a 500, 502,
  503 or 504 answer to an idempotent method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) or to a
  request carrying an ``Idempotency-Key`` header;
- a connection that could not be made (nothing was sent), always, unless the server's
  certificate was refused; one that broke or timed out while reading, for the same requests
  as a 5xx;
- never a request whose body was a stream (it cannot be sent twice).

The wait before try ``n`` (from 0) is the answer's ``Retry-After`` (seconds or an HTTP-date)
if it has one, else ``backoff * 2**n`` with jitter, at most ``max_wait``. A ``Retry-After``
longer than ``max_wait`` ends the retries: the caller gets that answer.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

__all__ = ["RateLimiter", "RetryTransport", "retry_after_seconds"]

log = logging.getLogger("legato.resources.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: 5xx answers worth another try: 501 and 505 say the server will never do it.
RETRIED_5XX = frozenset({500, 502, 503, 504})
_READ_ERRORS = (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError)
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)


class RateLimiter:
    """At most ``per_second`` acquisitions a second, spaced evenly, shared by every thread
    that uses this limiter (one per client, so per worker process and resource)."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError(f"rate must be positive, got {per_second!r}")
        self.per_second = per_second
        self._interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for this caller's slot. Slots are handed out under the lock and waited for
        outside it, so waiting threads queue in order without holding each other up."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


class RetryTransport(httpx.BaseTransport):
    """Sends each request through ``inner``, after the limiter's slot, retrying as the module
    docstring says."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.inner = inner
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.limiter = limiter
        self._sleep = sleep
        self._now = now
        self._jitter = jitter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        replayable = isinstance(request.stream, httpx.ByteStream)
        safe = request.method in IDEMPOTENT_METHODS or "idempotency-key" in request.headers
        attempt = 0
        while True:
            if self.limiter is not None:
                self.limiter.acquire()
            try:
                response = self.inner.handle_request(request)
            except _CONNECT_ERRORS + _READ_ERRORS as exc:
                may_retry = (isinstance(exc, _CONNECT_ERRORS) or safe) and not _refused_cert(exc)
                if attempt >= self.retries or not replayable or not may_retry:
                    raise
                delay = self._backoff(attempt)
                what = f"failed ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                may_retry = status == 429 or (status in RETRIED_5XX and safe)
                if attempt >= self.retries or not replayable or not may_retry:
                    return response
                wait = self._wait_for(response, attempt)
                if wait is None:
                    return response
                response.close()
                delay = wait
                what = f"answered {status}"
            attempt += 1
            log.warning(
                "%s %s %s; try %d of %d in %.2fs",
                request.method,
                request.url,
                what,
                attempt,
                self.retries,
                delay,
            )
            self._sleep(delay)

    def close(self) -> None:
        self.inner.close()

    def _backoff(self, attempt: int) -> float:
        # Half fixed, half random: workers that failed together do not come back together.
        full = min(self.max_wait, self.backoff * 2**attempt)
        return full / 2 + full / 2 * self._jitter()

    def _wait_for(self, response: httpx.Response, attempt: int) -> float | None:
        asked = retry_after_seconds(response.headers.get("retry-after"), self._now())
        if asked is None:
            return self._backoff(attempt)
        return asked if asked <= self.max_wait else None


def _refused_cert(exc: BaseException) -> bool:
    """Whether a connection failed on the server's certificate: trying again cannot help."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (0 for a date in the past);
    None when there is no header or it cannot be read."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT, whatever it says
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
