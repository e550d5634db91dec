"""Daemon heartbeats: who is alive, and since when.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)

from legato.domain.records import (
    DaemonRecord,
)
from legato.store.database import Part
from legato.store.schema import (
    daemons,
)


class DaemonStore(Part):
    """Daemon heartbeats."""

    def beat(self, daemon: DaemonRecord) -> None:
        """Record that ``daemon`` is alive as of ``daemon.heartbeat_at`` (insert or update)."""
        with self._write.connect() as conn, conn.begin():
            done = conn.execute(
                update(daemons)
                .where(daemons.c.id == daemon.id)
                .values(heartbeat_at=daemon.heartbeat_at, url=daemon.url)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(daemons).values(
                        id=daemon.id,
                        kind=daemon.kind,
                        host=daemon.host,
                        pid=daemon.pid,
                        version=daemon.version,
                        url=daemon.url,
                        started_at=daemon.started_at,
                        heartbeat_at=daemon.heartbeat_at,
                    )
                )

    def forget_daemon(self, daemon_id: str) -> None:
        """Remove a daemon that stopped cleanly."""
        with self._write.connect() as conn, conn.begin():
            conn.execute(delete(daemons).where(daemons.c.id == daemon_id))

    def forget_silent_daemons(self, before: datetime) -> list[DaemonRecord]:
        """Remove every daemon whose last heartbeat is older than ``before``; those removed."""
        with self._write.connect() as conn, conn.begin():
            stmt = select(daemons).where(daemons.c.heartbeat_at < before)
            silent = [DaemonRecord(*r) for r in conn.execute(stmt)]
            if silent:
                ids = [d.id for d in silent]
                # The heartbeat is checked again: a daemon that beat meanwhile stays.
                conn.execute(
                    delete(daemons).where(daemons.c.id.in_(ids), daemons.c.heartbeat_at < before)
                )
        return silent

    def daemons(self) -> list[DaemonRecord]:
        """Every daemon that has beaten and not stopped cleanly, newest heartbeat first."""
        stmt = select(daemons).order_by(daemons.c.heartbeat_at.desc())
        with self._engine.connect() as conn:
            return [DaemonRecord(*r) for r in conn.execute(stmt)]
