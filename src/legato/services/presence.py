"""Which daemons are alive: their heartbeats, and SQLite's one scheduler seat."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.owner import owner_is_dead
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from legato.domain.records import DaemonRecord
    from legato.services.workspace import Workspace

#: A daemon that has not beaten for this long is not counted as alive (SQLite's one seat).
SEAT_STALE = timedelta(seconds=15)
#: A daemon silent for this many lease lengths is gone (SIGKILLed, its machine lost): the
#: live ones remove its heartbeat, and it is listed no more.
SILENT_LEASES = 4
#: ... and never sooner than this, whatever the lease: a live daemon beats every 5 s.
SILENT_AT_LEAST = timedelta(minutes=1)


class Presence(Service):
    """Heartbeats of the daemon ``owner`` (its lease owner name), for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self._ws = ws
        self._started_at: datetime | None = None

    def _record(self, owner: str, kind: str, url: str | None, now: datetime) -> DaemonRecord:
        from legato import __version__
        from legato.domain.records import DaemonRecord

        if self._started_at is None:
            self._started_at = now
        return DaemonRecord(
            id=owner,
            kind=kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            url=url,
            started_at=self._started_at,
            heartbeat_at=now,
        )

    @action("daemons.read")
    def one_seat_only(self) -> bool:
        """Whether the store takes one driving daemon at a time (SQLite does)."""
        return self._ws.store.backend == "sqlite"

    @action("daemons.beat")
    def take_seat(self, owner: str, kind: str, now: datetime) -> None:
        """Take SQLite's one scheduler seat, or raise ServiceError naming who holds it.

        SQLite is one file on one machine, written by one process at a time: a second
        scheduler would only fight the first for the write lock. PostgreSQL takes many.
        """
        other = self._ws.store.claims.take_scheduler_seat(
            self._record(owner, kind, None, now),
            alive_since=now - SEAT_STALE,
            is_dead=owner_is_dead,
        )
        if other is not None:
            raise ServiceError(
                f"another scheduler already drives the runs of this SQLite store "
                f"(legato {other.kind}, pid {other.pid} on {other.host}, started "
                f"{other.started_at:%Y-%m-%d %H:%M:%S} UTC). SQLite takes one scheduler: stop "
                "that one first, or use PostgreSQL ([store] url) to run several."
            )

    @action("daemons.beat")
    def beat(self, owner: str, kind: str, url: str | None, now: datetime) -> None:
        """Record that the daemon ``owner`` is alive as of ``now``."""
        self._ws.store.daemons.beat(self._record(owner, kind, url, now))

    @action("daemons.read")
    def silent_after(self) -> timedelta:
        """How long a daemon may go without a heartbeat before it is taken for gone."""
        lease = timedelta(seconds=self._ws.config.lease_seconds)
        return max(lease * SILENT_LEASES, SILENT_AT_LEAST)

    @action("daemons.read")
    def daemons(self, now: datetime) -> list[DaemonRecord]:
        """Daemons that have beaten within ``silent_after()`` of ``now``, newest beat first.

        A daemon that was killed stays listed (as not beating) until then, so an operator
        sees it went away; after that it is gone, whether or not a sweep removed it yet.
        """
        since = now - self.silent_after()
        return [d for d in self._ws.store.daemons.daemons() if d.heartbeat_at >= since]

    @action("daemons.beat")
    def sweep(self, now: datetime) -> list[DaemonRecord]:
        """Remove the heartbeats of daemons silent for longer than ``silent_after()``: those
        that were killed or lost their machine. The live daemons call this now and then."""
        return self._ws.store.daemons.forget_silent_daemons(now - self.silent_after())

    @action("daemons.beat")
    def forget(self, owner: str) -> None:
        """Remove the heartbeat of a daemon that stops cleanly."""
        self._ws.store.daemons.forget_daemon(owner)
