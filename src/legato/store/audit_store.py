"""The audit trail: an append-only, hash-chained log of who did what (``legato.security.audit``
defines the chain).

Appending reads the chain's head (the last seq and hash, one row of ``audit_head``), writes
the next row and moves the head in one write transaction. The head's row lock serialises
appenders on PostgreSQL (SQLite has one writer), so seq runs 1, 2, 3... without gaps or
forks however many processes append.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from legato.domain.access import AuditRecord
from legato.domain.records import StoreError
from legato.security.audit import GENESIS, AuditEntry, entry_hash, first_broken
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import for_update
from legato.store.schema import audit_head, audit_log

_a = audit_log.c
_h = audit_head.c
_HEAD = _h.id == 1


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
        detail = rows.to_json(dict(entry.detail))
        # Hash what will be read back: JSON round-trips tuples as lists, int keys as strings.
        stored = dataclasses.replace(entry, detail=rows.from_json(detail))
        fields = {f.name: getattr(stored, f.name) for f in dataclasses.fields(AuditEntry)}
        with self._write.begin() as conn:
            head = select(_h.seq, _h.hash).where(_HEAD)
            seq, prev_hash = _head(conn.execute(for_update(head, self._backend)).first())
            seq += 1
            digest = entry_hash(prev_hash, seq, stored)
            values = {
                "seq": seq,
                **fields,
                "detail": detail,
                "prev_hash": prev_hash,
                "hash": digest,
            }
            conn.execute(insert(audit_log).values(values))
            conn.execute(update(audit_head).where(_HEAD).values(seq=seq, hash=digest))
        return seq

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

        Reads ``batch`` rows at a time, so a long trail is never in memory at once. Rows
        removed from the end show too (the head still names the last seq and hash), and so
        do rows written past the head other than by :meth:`append`. The chain is checked up
        to the head as it is when the check starts; rows appended meanwhile are left for
        the next check.
        """
        # One statement, so one snapshot: the head and the highest seq agree on every backend.
        last = select(func.max(_a.seq)).scalar_subquery()
        with self._engine.connect() as conn:
            found_head = conn.execute(select(_h.seq, _h.hash, last).where(_HEAD)).first()
        head_seq, head_hash = _head(found_head)
        assert found_head is not None  # _head raised otherwise
        if found_head[2] is not None and found_head[2] > head_seq:
            return head_seq + 1  # a row added behind append's back
        seq, last_hash = 0, GENESIS
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
