"""The daemons' lineage thread: sends the outbox's OpenLineage events beside the loop.

A thread of its own, as the alert thread, so that a lineage server that answers slowly never
delays a schedule tick or a run's step. Started only when ``[lineage]`` is set. The loop wakes
it when runs it drives finish; otherwise it looks every ``EVERY`` seconds, since events are
also written by runs other processes drive, and retries come due.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from legato.daemon.alert_thread import Wakeable
from legato.services.service_errors import disk_full, store_unavailable

if TYPE_CHECKING:
    from legato.services.door import Door

log = logging.getLogger("legato.lineage")

#: How often the thread looks when nothing wakes it.
EVERY = 1.0
#: Events sent long ago are forgotten this often (``lineage_service.KEEP_SENT``).
PRUNE_EVERY = timedelta(hours=1)
#: Events claimed at once; a full batch is followed by another at once.
BATCH = 100


class LineageThread(Wakeable):
    """Delivers lineage events for ``door`` (the daemon's own) until stopped."""

    def __init__(self, door: Door, owner: str) -> None:
        super().__init__("legato-lineage")
        self._door = door
        self._owner = owner
        self._next_prune = door.clock()
        self._said: str | None = None  # a failure said once, not at every retry

    def run(self) -> None:
        lineage = self._door.lineage
        while not self._halt.is_set():
            again = False
            try:
                now = self._door.clock()
                if now >= self._next_prune:
                    self._next_prune = now + PRUNE_EVERY
                    lineage.prune(now)
                sent = lineage.deliver(now, self._owner, limit=BATCH)
                again = len(sent) == BATCH
                for d in sent:
                    if d.error is not None and d.error != self._said:
                        later = f"; again at {d.retry_at:%H:%M:%S}" if d.retry_at else ""
                        log.warning("lineage event %s of run %s failed: %s%s", d.event_type,
                                    d.run_id, d.error, later)
                        self._said = d.error
                    elif d.error is None:
                        self._said = None
            except Exception as exc:  # the store away, or a bug: say so, go on
                if store_unavailable(exc) or disk_full(exc):
                    log.info("lineage: the store is unreachable or full: %s", exc)
                else:
                    log.warning("lineage: %s", exc, exc_info=True)
            if not again:
                self._wake.wait(EVERY)
                self._wake.clear()
