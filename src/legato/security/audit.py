"""The audit trail's hash chain, pure: how an entry is hashed and how a chain is checked.

Each row holds its sequence number, the hash of the row before (``GENESIS`` for the first)
and its own hash over both and all its fields. Altering a row breaks its own hash; removing
one leaves a gap in the numbers and a ``prev_hash`` that no longer matches. The store
(``legato.store.audit_store``) appends and streams rows through these functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["GENESIS", "AuditEntry", "Chained", "Entry", "entry_hash", "first_broken"]

#: The ``prev_hash`` of the first row.
GENESIS = "0" * 64


class Entry(Protocol):
    """What an audit entry says (``AuditEntry``, and the store's rows)."""

    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def auth(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


class Chained(Entry, Protocol):
    """A stored entry: its place in the chain and the hashes that link it."""

    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action to append to the audit trail.

    ``actor``: who (a user or token name, ``scheduler``...); ``auth``: how they proved it
    (``password``, ``token``, ``oidc``, ``local``...); ``source``: from where (an address, ``cli``);
    ``action``: what (``run.launch``, ``sign_in``...); ``target``: on what; ``outcome``:
    ``ok``, ``denied``, ``failed``...; ``detail``: anything else, JSON values only.
    """

    at: datetime
    actor: str
    auth: str
    source: str
    action: str
    target: str | None
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def _utc(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} in an audit entry; pass an aware one")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, seq: int, entry: Entry) -> str:
    """The SHA-256 hex digest of ``entry`` at ``seq`` after the row hashed ``prev_hash``.

    Hashed over canonical JSON (sorted keys, no spaces, UTF-8, times as ISO UTC with
    microseconds), so the same row read back from either database hashes the same.
    """
    canonical = {
        "seq": seq,
        "prev_hash": prev_hash,
        "at": _utc(entry.at),
        "actor": entry.actor,
        "auth": entry.auth,
        "source": entry.source,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def first_broken(
    rows: Iterable[Chained], *, prev_seq: int = 0, prev_hash: str = GENESIS
) -> int | None:
    """The seq of the first row, in ``rows`` given in seq order, that breaks the chain; None
    when every row holds.

    A row breaks it when its own hash does not match its content, when its seq does not
    follow the previous row's (rows before it were removed: the row after the gap is
    reported) or when its ``prev_hash`` is not the previous row's hash. ``prev_seq`` and
    ``prev_hash`` are where the chain stands before ``rows``: checking it in batches, pass the
    last row of the batch before.
    """
    for row in rows:
        if row.seq != prev_seq + 1 or row.prev_hash != prev_hash:
            return row.seq
        if row.hash != entry_hash(row.prev_hash, row.seq, row):
            return row.seq
        prev_seq, prev_hash = row.seq, row.hash
    return None
