"""The audit trail: an append-only, hash-chained log of who did what (``legato.security.audit``
defines the chain).

Appending reads the chain's head (the last seq and hash, one row of ``audit_head``), writes
the next row and moves the head in one write transaction. The head's row lock serialises
appenders on PostgreSQL (SQLite has one writer), so seq runs 1, 2, 3... without gaps or
forks however many processes append.

Retention removes the oldest rows (``prune``): the head then names the last row removed (its
tail), and the same transaction appends a row of action ``audit.pruned`` saying so, chained
like any other. The check starts from the tail and holds it against the newest such row, so
removing more rows than retention did still shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from legato.domain.access import AuditRecord
from legato.domain.records import StoreError
from legato.security.audit import AuditEntry, entry_hash, first_broken
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import for_update
from legato.store.schema import audit_head, audit_log

_a = audit_log.c
_h = audit_head.c
_HEAD = _h.id == 1
#: The action of the row a prune appends; its detail names the tail it left.
PRUNED = "audit.pruned"


def _record(row: Sequence[Any]) -> AuditRecord:
    values = list(row)
    values[8] = rows.from_json(values[8])
    return AuditRecord(*values)


def _head(row: Sequence[Any] | None) -> tuple[int, str]:
    """The chain's last seq and hash, from its head row (which the migration made)."""
    if row is None:
        raise StoreError(
            "the audit trail's head (table audit_head) is missing: someone deleted it, so the "
            "trail can no longer be vouched for. Restore the store from a backup"
        )
    return int(row[0]), str(row[1])


class AuditStore(Part):
    """The audit trail."""

    @rows.unwrap_bind_errors
    def append(self, entry: AuditEntry) -> int:
        """Append ``entry`` to the chain; its seq."""
        with self._write.begin() as conn:
            seq, prev_hash = self._locked_head(conn)
            return _append(conn, entry, seq, prev_hash)

    def _locked_head(self, conn: Connection) -> tuple[int, str]:
        head = select(_h.seq, _h.hash).where(_HEAD)
        return _head(conn.execute(for_update(head, self._backend)).first())

    def count_before(self, before: datetime, limit: int = 5000) -> int:
        """How many rows ``prune`` would remove (``limit`` at most)."""
        oldest = select(_a.seq).where(_a.at < before).order_by(_a.seq).limit(limit).subquery()
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(oldest)).scalar() or 0)

    def prune(self, before: datetime, entry: AuditEntry, limit: int = 5000) -> int:
        """Remove the oldest rows written before ``before``, ``limit`` at most, and append
        ``entry`` (action PRUNED) with the tail they leave added to its detail; how many
        rows went (none: nothing appended)."""
        with self._write.begin() as conn:
            seq, prev_hash = self._locked_head(conn)
            oldest = select(_a.seq).where(_a.at < before).order_by(_a.seq).limit(limit)
            last = conn.execute(select(func.max(oldest.subquery().c.seq))).scalar()
            if last is None:
                return 0
            tail_hash = conn.execute(select(_a.hash).where(_a.seq == last)).scalar_one()
            gone = conn.execute(delete(audit_log).where(_a.seq <= last)).rowcount
            detail = {**entry.detail, "removed": gone, "tail_seq": last, "tail_hash": tail_hash}
            _append(conn, dataclasses.replace(entry, detail=detail), seq, prev_hash)
            conn.execute(update(audit_head).where(_HEAD).values(tail_seq=last, tail_hash=tail_hash))
            return int(gone)

    @rows.unwrap_bind_errors
    def entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[AuditRecord]:
        """Audit rows matching every filter given (``since``: at or after; ``after_seq``: a
        page's last seq, paging forward; ``before_seq``: paging back), newest first unless
        ``newest_first`` is False."""
        stmt = select(audit_log).limit(limit)
        stmt = stmt.order_by(_a.seq.desc() if newest_first else _a.seq)
        if actor is not None:
            stmt = stmt.where(_a.actor == actor)
        if action is not None:
            stmt = stmt.where(_a.action == action)
        if since is not None:
            stmt = stmt.where(_a.at >= since)
        if after_seq is not None:
            stmt = stmt.where(_a.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(_a.seq < before_seq)
        with self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def verify(self, batch: int = 1000) -> int | None:
        """The seq of the first row that was altered or removed, or None if the chain holds.
        Rows retention removed are not missing: the check starts after the tail, and the
        tail must be the one the newest PRUNED row recorded.

        Reads ``batch`` rows at a time, so a long trail is never in memory at once. Rows
        removed from the end show too (the head still names the last seq and hash), and so
        do rows written past the head other than by :meth:`append`. The chain is checked up
        to the head as it is when the check starts; rows appended meanwhile are left for
        the next check.
        """
        # One statement, so one snapshot: the head and the highest seq agree on every backend.
        last = select(func.max(_a.seq)).scalar_subquery()
        with self._engine.connect() as conn:
            found_head = conn.execute(
                select(_h.seq, _h.hash, last, _h.tail_seq, _h.tail_hash).where(_HEAD)
            ).first()
            newest_prune = conn.execute(
                select(_a.detail).where(_a.action == PRUNED).order_by(_a.seq.desc()).limit(1)
            ).scalar()
        head_seq, head_hash = _head(found_head)
        assert found_head is not None  # _head raised otherwise
        if found_head[2] is not None and found_head[2] > head_seq:
            return head_seq + 1  # a row added behind append's back
        seq, last_hash = int(found_head[3]), str(found_head[4])
        if seq > 0:
            said = rows.from_json(newest_prune) if newest_prune is not None else {}
            if (said.get("tail_seq"), said.get("tail_hash")) != (seq, last_hash):
                return seq + 1  # the tail moved past what retention recorded
        while seq < head_seq:
            stmt = (
                select(audit_log)
                .where(_a.seq > seq, _a.seq <= head_seq)
                .order_by(_a.seq)
                .limit(batch)
            )
            with self._engine.connect() as conn:
                found = [_record(r) for r in conn.execute(stmt)]
            if not found:
                return seq + 1  # the rows from here to the head were removed
            broken = first_broken(found, prev_seq=seq, prev_hash=last_hash)
            if broken is not None:
                return broken
            seq, last_hash = found[-1].seq, found[-1].hash
        if last_hash != head_hash:  # the last row was rewritten, hash and all
            return head_seq
        return None


def _append(conn: Connection, entry: AuditEntry, seq: int, prev_hash: str) -> int:
    """Write ``entry`` after the head (``seq``, ``prev_hash``) and move the head; its seq."""
    detail = rows.to_json(dict(entry.detail))
    # Hash what will be read back: JSON round-trips tuples as lists, int keys as strings.
    stored = dataclasses.replace(entry, detail=rows.from_json(detail))
    fields = {f.name: getattr(stored, f.name) for f in dataclasses.fields(AuditEntry)}
    seq += 1
    digest = entry_hash(prev_hash, seq, stored)
    values = {"seq": seq, **fields, "detail": detail, "prev_hash": prev_hash, "hash": digest}
    conn.execute(insert(audit_log).values(values))
    conn.execute(update(audit_head).where(_HEAD).values(seq=seq, hash=digest))
    return seq
