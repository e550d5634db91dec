"""Retry policies: how many attempts, how long to wait between them, and on which errors."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from legato.definitions.durations import parse_duration
from legato.definitions.errors import FailNow


@dataclass(frozen=True)
class Condition:
    """A check that must hold before the next attempt starts ("retry once the error clears").

    ``check`` is called with backoff (``interval``, multiplied by ``backoff`` after each
    false answer, capped at ``max_interval``) until it returns True; if ``timeout`` passes
    first, the task fails for good. An exception raised by ``check`` counts as False.
    """

    check: Callable[[], bool]
    interval: float = 5.0
    backoff: float = 2.0
    max_interval: float = 300.0
    timeout: float | None = None
    name: str = ""

    def next_interval(self, checks_done: int) -> float:
        """Seconds to wait before the next check, after ``checks_done`` false answers."""
        return float(min(self.interval * (self.backoff**checks_done), self.max_interval))

    @property
    def label(self) -> str:
        return self.name or getattr(self.check, "__name__", "condition")


def when(
    check: Callable[[], bool],
    *,
    interval: str | float | timedelta = 5.0,
    backoff: float = 2.0,
    max_interval: str | float | timedelta = 300.0,
    timeout: str | float | timedelta | None = None,
    name: str = "",
) -> Condition:
    """Build a Condition from durations written as "5s", "2m"...: ``retry_when=when(db_up)``."""
    return Condition(
        check=check,
        interval=parse_duration(interval, field="interval") or 0.0,
        backoff=backoff,
        max_interval=parse_duration(max_interval, field="max_interval") or 0.0,
        timeout=parse_duration(timeout, field="timeout"),
        name=name,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """When and how a failed attempt is tried again.

    ``delay`` is the wait before the second attempt; each later wait is multiplied by
    ``backoff`` (1 means a fixed delay) and capped by ``max_delay``. ``jitter`` spreads a
    wait by up to that fraction either way, so many failing tasks do not retry in lock-step.
    Only exceptions that are instances of ``retry_on`` are retried; ``FailNow`` never is.
    Timeouts, crashed workers and interrupted attempts always count as retryable failures.
    """

    retries: int = 0
    delay: float = 0.0
    backoff: float = 1.0
    max_delay: float | None = None
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))
    condition: Condition | None = None

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def delay_before(self, next_attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``next_attempt`` (2 is the first retry)."""
        wait = self.delay * (self.backoff ** max(0, next_attempt - 2))
        if self.max_delay is not None:
            wait = min(wait, self.max_delay)
        if self.jitter and wait:
            r = (rng or random).uniform(-self.jitter, self.jitter)
            wait = max(0.0, wait * (1 + r))
        return float(wait)

    def retries_error(self, exc: BaseException) -> bool:
        """Whether this exception may be retried (attempts left are checked elsewhere)."""
        if isinstance(exc, FailNow):
            return False
        return isinstance(exc, self.retry_on)
