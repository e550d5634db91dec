"""Claims of several schedulers on one store: queued runs and orphans taken with row locks others
skip, leases judged by the database's clock, and SQLite's one scheduler seat.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)

from legato.domain.records import (
    DaemonRecord,
    NewEvent,
    RunRecord,
)
from legato.domain.states import (
    RunState,
)
from legato.store import dialect, rows
from legato.store import statements as sql
from legato.store.database import Part
from legato.store.schema import (
    daemons,
    runs,
)

_r = runs.c
_QUEUED = RunState.QUEUED.value
_RUNNING = RunState.RUNNING.value
DRIVING_KINDS = ("up", "scheduler")





class ClaimStore(Part):
    """Claims of several schedulers on one store."""

    def lease_clock(self, now: datetime) -> datetime:
        """The time by the clock leases are judged by: the PostgreSQL server's, else ``now``."""
        if not dialect.has_row_locks(self._backend):  # one machine's file: its clock
            return now
        with self._engine.connect() as conn:
            found: datetime = conn.execute(select(sql.lease_now())).scalar_one()
        return found

    def claim_queued_runs(
        self,
        owner: str,
        expires_at: datetime,
        now: datetime,
        *,
        limit: int,
        caps: Mapping[str, int] | None = None,
        pipelines: Collection[str] | None = None,
        skip_pipelines: Collection[str] = (),
        skip_backfills: Collection[str] = (),
        skip_runs: Collection[str] = (),
    ) -> list[RunRecord]:
        """Take the leases of up to ``limit`` queued runs nobody holds, in queue order.

        ``caps`` maps a pipeline to its ``max_active_runs``: running runs and queued runs
        with a live lease (claimed, about to start) count against it. ``skip_*`` leave out
        runs that cannot start now, so that they do not fill ``limit``; with ``pipelines``
        only runs of those are taken (the ones whose code the caller has). Appends a "lease"
        event to each run taken. Returns the runs as they are now, leased by ``owner``.
        """
        if limit <= 0:
            return []
        caps = dict(caps or {})
        params = sql.lease_params(expires_at, now)
        stmt = (
            select(_r.id, _r.pipeline)
            .where(_r.state == _QUEUED, sql.LEASE_FREE)
            .order_by(_r.priority.desc(), _r.queue_position, _r.id)
            .limit(limit * 2 + 20)  # room for runs of capped pipelines that cannot start
        )
        if pipelines is not None:
            stmt = stmt.where(_r.pipeline.in_(sorted(pipelines)))
        if skip_pipelines:
            stmt = stmt.where(_r.pipeline.not_in(list(skip_pipelines)))
        if skip_runs:
            stmt = stmt.where(_r.id.not_in(sorted(skip_runs)))
        if skip_backfills:
            stmt = stmt.where(
                or_(_r.backfill_id.is_(None), _r.backfill_id.not_in(list(skip_backfills)))
            )
        stmt = dialect.for_update(stmt, self._backend, skip_locked=True, of=runs)
        with self._write.begin() as conn:
            found = conn.execute(stmt, params).all()
            room = self._room(conn, {p for _, p in found if p in caps}, caps, params)
            chosen: list[str] = []
            for run_id, pipeline in found:
                if len(chosen) >= limit:
                    break
                if pipeline in room:
                    if room[pipeline] <= 0:
                        continue
                    room[pipeline] -= 1
                chosen.append(run_id)
            return self._lease_all(conn, chosen, owner, now, params)

    def claim_orphans(
        self,
        owner: str,
        expires_at: datetime,
        now: datetime,
        *,
        limit: int,
        pipelines: Collection[str] | None = None,
        skip_runs: Collection[str] = (),
    ) -> list[RunRecord]:
        """Take the leases of up to ``limit`` running runs whose lease ran out or was given
        back (their driver died or stopped): the caller carries them on."""
        if limit <= 0:
            return []
        params = sql.lease_params(expires_at, now)
        stmt = (
            select(_r.id)
            .where(_r.state == _RUNNING, sql.LEASE_FREE)
            .order_by(_r.priority.desc(), _r.queue_position, _r.id)
            .limit(limit)
        )
        if pipelines is not None:
            stmt = stmt.where(_r.pipeline.in_(sorted(pipelines)))
        if skip_runs:
            stmt = stmt.where(_r.id.not_in(sorted(skip_runs)))
        stmt = dialect.for_update(stmt, self._backend, skip_locked=True)
        with self._write.begin() as conn:
            ids = list(conn.execute(stmt, params).scalars())
            return self._lease_all(conn, ids, owner, now, params)

    def _room(
        self,
        conn: Connection,
        pipelines: set[str],
        caps: Mapping[str, int],
        params: dict[str, Any],
    ) -> dict[str, int]:
        """Free places per capped pipeline, counted while no other claimer can change them."""
        if not pipelines:
            return {}
        dialect.lock_names(conn, pipelines)
        active = or_(
            _r.state == _RUNNING,
            and_(_r.state == _QUEUED, _r.lease_owner.is_not(None), not_(sql.LEASE_FREE)),
        )
        stmt = (
            select(_r.pipeline, func.count())
            .where(_r.pipeline.in_(sorted(pipelines)), active)
            .group_by(_r.pipeline)
        )
        counts = {p: int(n) for p, n in conn.execute(stmt, params)}
        return {p: caps[p] - counts.get(p, 0) for p in pipelines}

    @staticmethod
    def _lease_all(
        conn: Connection, ids: list[str], owner: str, now: datetime, params: dict[str, Any]
    ) -> list[RunRecord]:
        if not ids:
            return []
        conn.execute(
            update(runs)
            .where(_r.id.in_(ids))
            .values(lease_owner=owner, lease_expires_at=sql.lease_until()),
            params,
        )
        conn.execute(
            sql.INSERT_EVENT,
            [rows.event_values(NewEvent(i, None, "lease", None, None, now, owner)) for i in ids],
        )
        found = conn.execute(select(runs).where(_r.id.in_(ids)))
        got = {r.id: r for r in map(rows.run_from_row, found)}
        return [got[i] for i in ids]

    def take_scheduler_seat(
        self,
        daemon: DaemonRecord,
        *,
        alive_since: datetime,
        is_dead: Callable[[str], bool],
    ) -> DaemonRecord | None:
        """Record ``daemon``'s first heartbeat unless another daemon that drives runs is alive
        (beat at or after ``alive_since`` and not known dead); returns that other one, or
        None when the seat was taken. One transaction, so two daemons starting at once
        cannot both pass. Used on SQLite, where one scheduler must drive the runs."""
        d = daemons.c
        with self._write.begin() as conn:
            others = conn.execute(
                select(daemons)
                .where(
                    d.id != daemon.id,
                    d.kind.in_(DRIVING_KINDS),
                    d.heartbeat_at >= alive_since,
                )
                .order_by(d.heartbeat_at.desc())
            ).all()
            for found in others:
                other = DaemonRecord(*found)
                if not is_dead(other.id):
                    return other
            conn.execute(delete(daemons).where(d.id == daemon.id))
            conn.execute(insert(daemons).values(**asdict(daemon)))
        return None
