"""The audit trail: appended in a gapless hash chain, read with filters, and checked so that an
altered or removed row is found."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import text

from legato.domain.records import StoreError
from legato.security.audit import GENESIS, AuditEntry, entry_hash, first_broken
from legato.store import db
from legato.store.store import Store
from tests.store.store_testkit import T0, race


def _entry(i: int, actor: str = "ann", action: str = "run.launch") -> AuditEntry:
    return AuditEntry(T0 + timedelta(seconds=i), actor, "password", "10.0.0.7", action,
                      f"etl/{i}", "ok", {"i": i, "params": {"day": "2024-05-01"}})  # fmt: skip


def _sql(store: Store, statement: str) -> None:
    """Tamper with the table directly, as someone with the database's password could."""
    engine = db.create_engine(store.url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def test_appended_entries_are_chained_and_read_back(store: Store) -> None:
    assert store.audit.verify() is None  # an empty trail holds
    assert [store.audit.append(_entry(i)) for i in range(1, 4)] == [1, 2, 3]
    rows = store.audit.entries(newest_first=False)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    first = rows[0]
    assert (first.at, first.actor, first.auth, first.source, first.action, first.target,
            first.outcome, first.detail) == (T0 + timedelta(seconds=1), "ann", "password",
            "10.0.0.7", "run.launch", "etl/1", "ok",
            {"i": 1, "params": {"day": "2024-05-01"}})  # fmt: skip
    assert first_broken(rows) is None
    assert store.audit.verify() is None


def test_detail_is_hashed_as_it_reads_back(store: Store) -> None:
    odd = AuditEntry(T0, "ann", "token", "cli", "secret.write", None, "ok",
                     {"keys": ("a", "b"), 7: "seven"})  # fmt: skip
    store.audit.append(odd)
    [row] = store.audit.entries()
    assert row.detail == {"keys": ["a", "b"], "7": "seven"}
    assert row.target is None
    assert store.audit.verify() is None


def test_entries_filter_and_page(store: Store) -> None:
    for i in range(1, 11):
        store.audit.append(_entry(i, actor="ann" if i % 2 else "bob",
                                  action="sign_in" if i % 3 == 0 else "run.launch"))  # fmt: skip
    assert [r.seq for r in store.audit.entries()] == list(range(10, 0, -1))
    assert [r.seq for r in store.audit.entries(actor="bob")] == [10, 8, 6, 4, 2]
    assert [r.seq for r in store.audit.entries(action="sign_in")] == [9, 6, 3]
    assert [r.seq for r in store.audit.entries(actor="bob", action="sign_in")] == [6]
    assert [r.seq for r in store.audit.entries(since=T0 + timedelta(seconds=8))] == [10, 9, 8]
    page = store.audit.entries(limit=4, newest_first=False)
    assert [r.seq for r in page] == [1, 2, 3, 4]
    after = store.audit.entries(after_seq=page[-1].seq, limit=4, newest_first=False)
    assert [r.seq for r in after] == [5, 6, 7, 8]


def test_verify_finds_an_altered_row_in_any_batch(store: Store) -> None:
    for i in range(1, 11):
        store.audit.append(_entry(i))
    assert store.audit.verify(batch=3) is None
    _sql(store, "UPDATE audit_log SET target = 'etl/other' WHERE seq = 7")
    assert store.audit.verify(batch=3) == 7
    assert store.audit.verify(batch=1000) == 7


def test_verify_finds_a_removed_row(store: Store) -> None:
    for i in range(1, 8):
        store.audit.append(_entry(i))
    _sql(store, "DELETE FROM audit_log WHERE seq = 4")
    assert store.audit.verify(batch=2) == 5  # the row after the gap


def test_verify_finds_rows_removed_from_the_end(store: Store) -> None:
    for i in range(1, 6):
        store.audit.append(_entry(i))
    _sql(store, "DELETE FROM audit_log WHERE seq >= 4")
    assert store.audit.verify() == 4
    _sql(store, "DELETE FROM audit_log")
    assert store.audit.verify() == 1


def test_verify_finds_a_last_row_rewritten_with_a_matching_hash(store: Store) -> None:
    for i in range(1, 4):
        store.audit.append(_entry(i))
    [last] = store.audit.entries(limit=1)
    # Rewritten with its hash recomputed, the last row is consistent with the rows before it:
    # only the chain's head still holds the hash it was appended with.
    forged = dataclasses.replace(last, target="etl/hidden")
    digest = entry_hash(forged.prev_hash, forged.seq, forged)
    _sql(store, f"UPDATE audit_log SET target = 'etl/hidden', hash = '{digest}' WHERE seq = 3")
    assert first_broken(store.audit.entries(newest_first=False)) is None
    assert store.audit.verify() == 3


def test_verify_finds_a_row_added_past_the_head(store: Store) -> None:
    for i in range(1, 3):
        store.audit.append(_entry(i))
    [last] = store.audit.entries(limit=1)
    forged = dataclasses.replace(last, seq=3, prev_hash=last.hash, target="etl/forged")
    digest = entry_hash(last.hash, 3, forged)
    _sql(store, "INSERT INTO audit_log SELECT 3, at, actor, auth, source, action, 'etl/forged', "
                f"outcome, detail, hash, '{digest}' FROM audit_log WHERE seq = 2")  # fmt: skip
    assert first_broken(store.audit.entries(newest_first=False)) is None
    assert store.audit.verify() == 3


def test_concurrent_appenders_make_one_gapless_chain(store: Store) -> None:
    per_thread = 15

    def append_many(s: Store, worker: int) -> list[int]:
        return [s.audit.append(_entry(i, actor=f"w{worker}")) for i in range(per_thread)]

    seqs = race(store, 4, append_many)
    assert sorted(s for got in seqs for s in got) == list(range(1, 4 * per_thread + 1))
    for got in seqs:
        assert got == sorted(got)
    assert store.audit.verify(batch=7) is None
    assert store.audit.append(_entry(99)) == 4 * per_thread + 1


def test_a_deleted_head_stops_appending_and_checking(store: Store) -> None:
    store.audit.append(_entry(1))
    _sql(store, "DELETE FROM audit_head")
    with pytest.raises(StoreError, match="audit_head"):
        store.audit.append(_entry(2))
    with pytest.raises(StoreError, match="audit_head"):
        store.audit.verify()
    assert [r.seq for r in store.audit.entries()] == [1]


def _pruning(at_s: int) -> AuditEntry:
    return AuditEntry(T0 + timedelta(seconds=at_s), "local", "local", "cli", "audit.pruned",
                      "", "ok", {"older_than": "30 days"})  # fmt: skip


def test_pruning_removes_the_oldest_rows_and_the_chain_still_holds(store: Store) -> None:
    for i in range(1, 11):
        store.audit.append(_entry(i))
    assert store.audit.count_before(T0 + timedelta(seconds=6)) == 5
    assert store.audit.prune(T0 + timedelta(seconds=6), _pruning(20), limit=3) == 3
    assert store.audit.prune(T0 + timedelta(seconds=6), _pruning(21)) == 2
    rows = store.audit.entries(newest_first=False)
    # Rows 6-10 stay, then the rows of the two prunes, the newest naming the tail it left.
    assert [r.seq for r in rows] == [6, 7, 8, 9, 10, 11, 12]
    assert rows[-1].action == "audit.pruned"
    assert rows[-1].detail["removed"] == 2 and rows[-1].detail["tail_seq"] == 5
    assert store.audit.verify(batch=2) is None
    assert store.audit.prune(T0 + timedelta(seconds=6), _pruning(22)) == 0  # nothing older
    assert store.audit.append(_entry(30)) == 13
    assert store.audit.verify() is None


def test_rows_removed_past_the_pruned_tail_show(store: Store) -> None:
    for i in range(1, 9):
        store.audit.append(_entry(i))
    store.audit.prune(T0 + timedelta(seconds=4), _pruning(20))  # rows 1-3
    assert store.audit.verify() is None
    _sql(store, "DELETE FROM audit_log WHERE seq = 4")
    assert store.audit.verify() == 5  # the row after the gap
    # Moving the tail over the gap too: the prune's own row names another tail.
    [row5] = [r for r in store.audit.entries() if r.seq == 5]
    _sql(store, f"UPDATE audit_head SET tail_seq = 4, tail_hash = '{row5.prev_hash}'")
    assert store.audit.verify() == 5
