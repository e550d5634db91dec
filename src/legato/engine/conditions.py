"""Retry conditions ("retry once the error clears"), checked off the driver's thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from legato.definitions.retry import Condition


class ConditionChecks:
    """Runs each waiting task's condition check in a small thread pool.

    A check is user code (a health probe, a query) that may block, so it never runs on the
    driver's loop; the loop collects answers with ``answers()``.
    """

    def __init__(self, threads: int = 2) -> None:
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, Future[bool]] = {}
        self._false: dict[str, int] = {}

    def checking(self, key: str) -> bool:
        """Whether a check for ``key`` is under way."""
        return key in self._running

    def busy(self) -> bool:
        return bool(self._running)

    def start(self, key: str, condition: Condition) -> None:
        """Begin one check of ``condition`` for the task run ``key``."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="legato-condition")
        self._running[key] = self._pool.submit(_safe_check, condition.check)

    def answers(self) -> Iterator[tuple[str, bool]]:
        """The checks that have finished: (key, holds)."""
        for key, fut in list(self._running.items()):
            if fut.done():
                del self._running[key]
                yield key, fut.result()

    def count_false(self, key: str) -> int:
        """Record a false answer for ``key``; how many it has had since its last failure."""
        self._false[key] = self._false.get(key, 0) + 1
        return self._false[key]

    def reset(self, key: str) -> None:
        """A new failure starts the backoff of its condition checks afresh."""
        self._false.pop(key, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _safe_check(check: Callable[[], bool]) -> bool:
    # A check that raises counts as "not yet": the error it reports is what we wait out.
    try:
        return bool(check())
    except Exception:
        return False
