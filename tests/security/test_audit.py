"""The audit chain: each row's hash covers its content and the row before; a check finds the
first altered, removed or re-linked row."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from legato.domain.access import AuditRecord
from legato.security.audit import GENESIS, AuditEntry, entry_hash, first_broken

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def chain(count: int) -> list[AuditRecord]:
    rows: list[AuditRecord] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        entry = AuditEntry(
            T0 + timedelta(seconds=seq), f"user{seq % 3}", "password", "10.0.0.1",
            "run.launch", f"etl/{seq}", "ok", {"n": seq, "é": [1, 2]},
        )  # fmt: skip
        fields = [getattr(entry, f.name) for f in dataclasses.fields(entry)]
        digest = entry_hash(prev, seq, entry)
        rows.append(AuditRecord(seq, *fields, prev_hash=prev, hash=digest))
        prev = digest
    return rows


def test_an_intact_chain_holds_and_batches_continue_it() -> None:
    rows = chain(10)
    assert rows[0].prev_hash == GENESIS
    assert first_broken(rows) is None
    assert first_broken([]) is None
    assert first_broken(rows[5:], prev_seq=5, prev_hash=rows[4].hash) is None
    assert first_broken(rows[5:], prev_seq=5, prev_hash=rows[3].hash) == 6


@pytest.mark.parametrize(
    "change",
    [
        {"target": "etl/other"},
        {"actor": "mallory"},
        {"outcome": "denied"},
        {"detail": {"n": 4, "é": [1, 2, 3]}},
        {"at": T0 + timedelta(seconds=4, microseconds=1)},
        {"target": None},
    ],
)
def test_an_altered_row_is_found(change: dict[str, Any]) -> None:
    rows = chain(6)
    rows[3] = dataclasses.replace(rows[3], **change)
    assert first_broken(rows) == 4


def test_a_removed_row_is_found_at_the_row_after_the_gap() -> None:
    rows = chain(6)
    assert first_broken(rows[:2] + rows[3:]) == 4
    assert first_broken(rows[1:]) == 2  # the first row removed


def test_a_row_rehashed_after_an_edit_breaks_the_link_of_the_next() -> None:
    rows = chain(6)
    edited = dataclasses.replace(rows[2], target="hidden")
    rows[2] = dataclasses.replace(edited, hash=entry_hash(edited.prev_hash, 3, edited))
    assert first_broken(rows) == 4


def test_the_hash_depends_on_the_instant_not_its_time_zone_or_key_order() -> None:
    entry = AuditEntry(T0, "ann", "token", "cli", "secret.read", "db_password", "ok",
                       {"a": 1, "b": 2})  # fmt: skip
    east = dataclasses.replace(entry, at=T0.astimezone(timezone(timedelta(hours=5))),
                               detail={"b": 2, "a": 1})  # fmt: skip
    assert entry_hash(GENESIS, 1, entry) == entry_hash(GENESIS, 1, east)
    assert entry_hash(GENESIS, 1, entry) != entry_hash(GENESIS, 2, entry)
    assert entry_hash(GENESIS, 1, entry) != entry_hash("1" * 64, 1, entry)
    with pytest.raises(ValueError, match="naive"):
        entry_hash(GENESIS, 1, dataclasses.replace(entry, at=datetime(2026, 1, 1)))
