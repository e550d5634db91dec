"""The outbox of OpenLineage run events: written with the state change they tell of, sent by
whoever claims them.

``write_lineage`` is called by ``RunStore.apply`` inside the step's transaction, so an event
is never lost to a crash between the two, nor written for a step that was not. Senders claim
due events with a lease (``claim``): one claimer at a time (a PostgreSQL advisory lock held
for the claim's transaction, SQLite's one writer), so several schedulers send each event
once; a sender that dies leaves its events to be claimed again when its lease runs out. A
run's events go out in order: one waiting for a retry holds back those after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from legato.domain.records import NewLineageEvent
from legato.store import dialect, rows
from legato.store.database import Part
from legato.store.schema import lineage_events

PENDING, SENT, FAILED = "pending", "sent", "failed"
_e = lineage_events.c


@dataclass(frozen=True)
class LineageRow:
    """One event of the outbox, as claimed or listed."""

    id: int
    run_id: str
    event_type: str
    body: dict[str, Any]
    created_at: datetime
    state: str
    tries: int
    next_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class Outcome:
    """How sending one claimed event went: sent (``error`` None), to be tried again at
    ``retry_at``, or (neither) failed for good."""

    event_id: int
    error: str | None = None
    retry_at: datetime | None = None


def _row(r: Any) -> LineageRow:
    return LineageRow(r.id, r.run_id, r.event_type, rows.from_json(r.body), r.created_at,
                      r.state, r.tries, r.next_at, r.last_error)


def write_lineage(conn: Connection, events: Sequence[NewLineageEvent]) -> None:
    """Add ``events`` to the outbox inside the caller's transaction, due at once."""
    if events:
        conn.execute(insert(lineage_events), [
            {"run_id": e.run_id, "event_type": e.event_type, "body": rows.to_json(e.body),
             "created_at": e.at, "state": PENDING, "tries": 0, "next_at": e.at}
            for e in events
        ])


class LineageStore(Part):
    """The lineage outbox: claims, outcomes, listing and pruning."""

    def claim(self, owner: str, now: datetime, lease: timedelta,
              limit: int = 100) -> list[LineageRow]:
        """Take up to ``limit`` due events for ``owner`` until ``now + lease``, oldest first:
        pending ones whose time has come and that nobody holds (or whose holder's lease ran
        out), each with no earlier event of its run still waiting or held by another."""
        free = or_(_e.lease_until.is_(None), _e.lease_until < now)
        # Each run's first event still waiting for a retry or held by a sender: no event of
        # that run after it may go before it does.
        waiting = (
            select(_e.run_id, func.min(_e.id).label("first"))
            .where(_e.state == PENDING, or_(_e.next_at > now, _e.lease_until >= now))
            .group_by(_e.run_id)
            .subquery()
        )
        pick = (
            select(_e.id)
            .outerjoin(waiting, waiting.c.run_id == _e.run_id)
            .where(_e.state == PENDING, _e.next_at <= now, free,
                   or_(waiting.c.first.is_(None), _e.id < waiting.c.first))
            .order_by(_e.id)
            .limit(limit)
        )
        with self._write.begin() as conn:
            # Claims one at a time: a claim sees the leases the one before it took.
            dialect.lock_names(conn, ["lineage"])
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                update(lineage_events)
                .where(_e.id.in_(ids))
                .values(lease_owner=owner, lease_until=now + lease, tries=_e.tries + 1)
            )
            found = conn.execute(
                select(lineage_events).where(_e.id.in_(ids)).order_by(_e.id)
            )
            return [_row(r) for r in found]

    def finish(self, event_id: int, owner: str, now: datetime, *, error: str | None = None,
               retry_at: datetime | None = None) -> bool:
        """Record how a claimed event went: sent (no ``error``), to be tried again at
        ``retry_at``, or failed for good. False when ``owner`` no longer holds it."""
        return self.finish_all(owner, [Outcome(event_id, error, retry_at)]) == 1

    def finish_all(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        """Record the outcomes of a batch of claimed events in one transaction; how many
        ``owner`` still held (the others were taken over and are left as they are)."""
        held = 0
        mine = and_(_e.lease_owner == owner, _e.state == PENDING)
        sent = [o.event_id for o in outcomes if o.error is None]
        with self._write.begin() as conn:
            if sent:  # most of a batch: one statement
                held += conn.execute(
                    update(lineage_events)
                    .where(_e.id.in_(sent), mine)
                    .values(state=SENT, last_error=None, lease_owner=None, lease_until=None)
                ).rowcount
            for o in outcomes:
                if o.error is None:
                    continue
                values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
                if o.retry_at is not None:
                    values.update(next_at=o.retry_at, last_error=o.error[:2000])
                else:
                    values.update(state=FAILED, last_error=o.error[:2000])
                done = conn.execute(
                    update(lineage_events)
                    .where(_e.id == o.event_id, mine)
                    .values(values)
                )
                held += done.rowcount
        return held

    def put_back(self, event_ids: Sequence[int], owner: str, retry_at: datetime) -> None:
        """Give back claimed events not tried (an earlier event of their run failed): due
        again at ``retry_at``, their tries as they were."""
        if event_ids:
            with self._write.begin() as conn:
                conn.execute(
                    update(lineage_events)
                    .where(_e.id.in_(list(event_ids)), _e.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None, next_at=retry_at,
                            tries=_e.tries - 1)
                )

    def next_due(self) -> datetime | None:
        """When the earliest pending event is due (None: none is pending)."""
        stmt = select(func.min(_e.next_at)).where(_e.state == PENDING)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def events(self, run_id: str | None = None, *, limit: int = 100) -> list[LineageRow]:
        """The outbox's events (of one run), oldest first."""
        stmt = select(lineage_events).order_by(_e.id).limit(limit)
        if run_id is not None:
            stmt = stmt.where(_e.run_id == run_id)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def prune(self, before: datetime) -> int:
        """Forget events sent or failed for good before ``before``; how many went."""
        with self._write.begin() as conn:
            gone = conn.execute(
                delete(lineage_events).where(
                    and_(_e.state.in_([SENT, FAILED]), _e.created_at < before)
                )
            )
            return int(gone.rowcount)
