"""The daemons' alert thread: evaluates alert rules and sends their messages beside the loop.

A thread of its own, so that a receiver that answers slowly (or not at all, until its
timeout) never delays a schedule tick or a run's step. The loop wakes it when a run it drives
finishes (if there are rules) and when the code is loaded again (the rules may change);
otherwise it looks every ``EVERY`` seconds (facts written by other processes, the
time-based conditions, retries coming due).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from legato.services.service_errors import ServiceError, disk_full, store_unavailable

if TYPE_CHECKING:
    from legato.services.door import Door

log = logging.getLogger("legato.alerts")

#: How often the thread looks when nothing wakes it.
EVERY = 1.0
#: ... and how often when the project has no alert rule (only to empty the outbox).
EVERY_WITHOUT_RULES = 30.0
#: Alerts ended long ago are forgotten this often (``legato.services.alerting.KEEP_HISTORY``).
PRUNE_EVERY = timedelta(hours=1)


class Wakeable(threading.Thread):
    """A daemon's outbox sender: a thread that looks when woken or after a while, until
    stopped (alerts here, lineage events in ``lineage_thread``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._wake = threading.Event()
        self._halt = threading.Event()  # not _stop: Thread has a method of that name

    def wake(self) -> None:
        """Look now (a run finished). Thread-safe."""
        self._wake.set()

    def stop(self) -> None:
        """End the thread after its current pass."""
        self._halt.set()
        self._wake.set()


class AlertThread(Wakeable):
    """Evaluates and delivers alerts for ``door`` (the daemon's own) until stopped."""

    def __init__(self, door: Door, owner: str, own_url: Callable[[], str | None]) -> None:
        super().__init__("legato-alerts")
        self._door = door
        self._owner = owner
        self._own_url = own_url
        self._since = door.clock()
        self._last_problem: str | None = None  # said once, not every second
        self._next_prune = self._since
        # Whether the last pass found alert rules. Without any, a finished run has nothing to
        # alert about: waking a pass per run (two write transactions, each contending with
        # the drivers' steps for SQLite's one writer) would only empty the outbox sooner.
        self._has_rules = True

    def run_finished(self) -> None:
        """A run driven here finished: look now if any rule may alert on it. Thread-safe."""
        if self._has_rules:
            self.wake()

    def run(self) -> None:
        alerts = self._door.alerts
        while not self._halt.is_set():
            wait = EVERY
            try:
                self._has_rules = bool(alerts.rules())
                if not self._has_rules:
                    wait = EVERY_WITHOUT_RULES
                alerts.evaluate(
                    self._door.clock(), own_url=self._own_url(), watching_since=self._since
                )
                now = self._door.clock()
                if now >= self._next_prune:
                    self._next_prune = now + PRUNE_EVERY
                    alerts.prune(now)
                for sent in alerts.deliver(now, self._owner):
                    if sent.error is not None:
                        later = f"; again at {sent.retry_at:%H:%M:%S}" if sent.retry_at else ""
                        log.warning("alert %r to %s failed: %s%s", sent.title, sent.channel,
                                    sent.error, later)
            except ServiceError as exc:  # a rule broken by a reload: said once, until fixed
                if str(exc) != self._last_problem:
                    log.warning("alerts: %s", exc)
                self._last_problem = str(exc)
            except Exception as exc:  # the store away, or a bug: say so, go on
                if store_unavailable(exc) or disk_full(exc):
                    log.info("alerts: the store is unreachable or full: %s", exc)
                else:
                    log.warning("alerts: %s", exc, exc_info=True)
            else:
                self._last_problem = None
            self._wake.wait(wait)
            self._wake.clear()
