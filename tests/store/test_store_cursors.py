"""Cursor windows in the store: one per pipeline, cursor and scope, each starting where the
newest one ended, kept with the types of their bounds (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from legato.domain.cursors import Window, partition_scope, run_scope
from legato.store.store import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_windows_follow_each_other_and_a_scope_keeps_its_own(store: Store) -> None:
    cursors = store.cursors
    first = cursors.open_window("etl", "orders.id", partition_scope("a"), 10, "r1", T0)
    assert first.window == Window(None, 10)
    second = cursors.open_window(
        "etl", "orders.id", partition_scope("b"), 15, "r2", T0 + timedelta(seconds=1)
    )
    assert second.window == Window(10, 15)
    # Partition a asks again after rows came: it keeps the window it had.
    again = cursors.open_window(
        "etl", "orders.id", partition_scope("a"), 99, "r3", T0 + timedelta(seconds=2)
    )
    assert again.window == Window(None, 10) and again.run_id == "r1"
    assert cursors.get_window("etl", "orders.id", partition_scope("a")) == first
    # Rows deleted at the source never move a window back over rows read already.
    shrunk = cursors.open_window("etl", "orders.id", run_scope("r4"), 12, "r4", T0 + timedelta(3))
    assert shrunk.window == Window(15, 15) and shrunk.window.empty
    # Another cursor and another pipeline have windows of their own.
    assert cursors.open_window("etl", "users.id", run_scope("r5"), 3, "r5", T0).window == Window(
        None, 3
    )
    assert cursors.open_window("other", "orders.id", run_scope("r6"), 7, "r6", T0).window == Window(
        None, 7
    )
    listed = cursors.list_windows("etl", "orders.id")
    assert [w.scope for w in listed] == ["partition:a", "partition:b", "run:r4"]
    assert [w.window.high for w in listed] == [10, 15, 15]
    assert len(cursors.list_windows("etl")) == 4


@pytest.mark.parametrize(
    "low, high",
    [
        (datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)),
        (datetime(2026, 1, 1, 12, 30), datetime(2026, 1, 1, 13, 0)),
        (date(2026, 1, 1), date(2026, 2, 1)),
        (Decimal("10.250"), Decimal("12.5")),
        ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
        (2**53 + 1, 2**62),
        (1.5, 2.25),
    ],
)
def test_bounds_come_back_with_their_type(store: Store, low: object, high: object) -> None:
    store.cursors.open_window("etl", "c", run_scope("r1"), low, "r1", T0)
    got = store.cursors.open_window("etl", "c", run_scope("r2"), high, "r2", T0 + timedelta(1))
    assert got.window == Window(low, high)
    assert type(got.window.low) is type(low) and type(got.window.high) is type(high)
    reread = store.cursors.get_window("etl", "c", run_scope("r2"))
    assert reread is not None and reread.window == Window(low, high)
    assert type(reread.window.high) is type(high)


def test_an_empty_source_gives_an_empty_window_and_a_bad_bound_writes_nothing(
    store: Store,
) -> None:
    empty = store.cursors.open_window("etl", "c", run_scope("r1"), None, "r1", T0)
    assert empty.window == Window(None, None) and empty.window.empty
    first = store.cursors.open_window("etl", "c", run_scope("r2"), 5, "r2", T0 + timedelta(1))
    assert first.window == Window(None, 5)
    with pytest.raises(TypeError, match="cursor bound"):
        store.cursors.open_window("etl", "c", run_scope("r3"), object(), "r3", T0 + timedelta(2))
    assert store.cursors.get_window("etl", "c", run_scope("r3")) is None
