"""Pools: slots per pool from legato.toml, and which task runs hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    delete,
    insert,
    or_,
    select,
    update,
)

from legato.domain.records import (
    NotFound,
)
from legato.store import rows
from legato.store import statements as sql
from legato.store.database import Part
from legato.store.dialect import insert_if_missing
from legato.store.schema import (
    pool_claims,
    pools,
    runs,
)

_r = runs.c


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A pool's size and the task runs holding its slots."""

    name: str
    slots: int
    holders: tuple[tuple[str, str], ...]  # (run_id, task_key)




class PoolStore(Part):
    """Pools."""

    def sync_pools(self, sizes: Mapping[str, int]) -> None:
        """Make the pools table say exactly ``sizes`` (claims of removed pools are dropped)."""
        with self._engine.connect() as conn:
            seen = {n: s for n, s in conn.execute(select(pools.c.name, pools.c.slots))}
        if seen == dict(sizes):
            return  # the usual case: no write, so no lock
        with self._write.begin() as conn:
            have = {n: s for n, s in conn.execute(select(pools.c.name, pools.c.slots))}
            for name in set(have) - set(sizes):
                conn.execute(delete(pools).where(pools.c.name == name))
                conn.execute(delete(pool_claims).where(pool_claims.c.pool == name))
            for name, slots in sizes.items():
                if name not in have:
                    insert_if_missing(conn, pools, {"name": name, "slots": slots})
                elif have[name] != slots:
                    conn.execute(update(pools).where(pools.c.name == name).values(slots=slots))

    @rows.unwrap_bind_errors
    def claim_pool_slot(self, pool: str, run_id: str, task_key: str, now: datetime) -> bool:
        """Take a slot of ``pool`` for a task run; False when every slot is held.

        A claim counts while its run's lease is live: slots held by a driver that died free
        up when its lease runs out. Claiming twice for the same task run is a no-op (True).
        """
        pc = pool_claims.c
        with self._write.begin() as conn:
            # Locks the pool's row on PostgreSQL, so counting and claiming cannot interleave
            # with another claimer; SQLite's single writer gives the same.
            size = conn.execute(
                select(pools.c.slots).where(pools.c.name == pool).with_for_update()
            ).scalar()
            if size is None:
                raise NotFound(f"no pool named {pool!r}")
            mine = conn.execute(
                select(pc.pool).where(pc.run_id == run_id, pc.task_key == task_key)
            ).first()
            if mine is not None:
                return True
            # Judged by the lease clock (PostgreSQL's own on that backend), like the leases.
            expired = or_(_r.lease_expires_at.is_(None), _r.lease_expires_at < sql.lease_now())
            holders = conn.execute(
                select(pc.run_id, pc.task_key, expired)
                .join(runs, _r.id == pc.run_id, isouter=True)
                .where(pc.pool == pool),
                {"now": now},
            ).all()
            stale = [(h[0], h[1]) for h in holders if h[2]]
            for rid, key in stale:
                conn.execute(delete(pool_claims).where(pc.run_id == rid, pc.task_key == key))
            if len(holders) - len(stale) >= size:
                return False
            conn.execute(
                insert(pool_claims).values(
                    run_id=run_id, task_key=task_key, pool=pool, claimed_at=now
                )
            )
            return True

    def release_pool_slot(self, run_id: str, task_key: str | None = None) -> None:
        """Give back the slot a task run holds (every slot of the run without ``task_key``)."""
        pc = pool_claims.c
        stmt = delete(pool_claims).where(pc.run_id == run_id)
        if task_key is not None:
            stmt = stmt.where(pc.task_key == task_key)
        with self._write.begin() as conn:
            conn.execute(stmt)

    def pool_usage(self) -> list[PoolUsage]:
        """Each pool with the task runs holding its slots."""
        pc = pool_claims.c
        with self._engine.connect() as conn:
            sizes = list(conn.execute(select(pools.c.name, pools.c.slots).order_by(pools.c.name)))
            held = list(
                conn.execute(select(pc.pool, pc.run_id, pc.task_key).order_by(pc.claimed_at))
            )
        return [
            PoolUsage(name, slots, tuple((r, k) for p, r, k in held if p == name))
            for name, slots in sizes
        ]
