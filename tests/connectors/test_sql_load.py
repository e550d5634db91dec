"""SQL load into PostgreSQL, SQLite and DuckDB (an Engine of the duckdb_engine dialect and a
plain duckdb connection): the table made from the frame's schema, append, replace and an upsert
that is idempotent, every load one transaction, any kind of frame."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa

from legato.connectors import sql, sql_load

TARGETS = ("postgresql", "sqlite", "duckdb-engine", "duckdb")


class Target:
    """A database ``load`` writes to, and how the test reads it back."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle  # an Engine or a duckdb connection

    def load(self, frame: Any, table: str = "sales", **kw: Any) -> int:
        return sql.load(self.handle, frame, table, **kw)

    def rows(self, table: str = "sales", columns: str = "*") -> list[tuple[Any, ...]]:
        query = f"SELECT {columns} FROM {table} ORDER BY 1"
        if isinstance(self.handle, sa.Engine):
            with self.handle.connect() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(query)]
        return [tuple(r) for r in self.handle.execute(query).fetchall()]

    def exists(self, table: str = "sales") -> bool:
        if isinstance(self.handle, sa.Engine):
            return sa.inspect(self.handle).has_table(table)
        found = self.handle.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchall()
        return bool(found[0][0])

    def execute(self, statement: str) -> None:
        if isinstance(self.handle, sa.Engine):
            with self.handle.begin() as conn:
                conn.exec_driver_sql(statement)
        else:
            self.handle.execute(statement)


@pytest.fixture(params=TARGETS)
def target(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Target]:
    kind = request.param
    if kind == "duckdb":
        import duckdb

        conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        yield Target(conn)
        conn.close()
        return
    url = {
        "postgresql": lambda: store_url_for("postgresql"),
        "sqlite": lambda: f"sqlite:///{tmp_path / 'shop.db'}",
        "duckdb-engine": lambda: f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
    }[kind]()
    engine = sa.create_engine(url)
    yield Target(engine)
    engine.dispose()


def sales(ids: range, note: str = "") -> pa.Table:
    """A frame of sales of mixed column types, one row per id."""
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "region": [f"r{i % 3}{note}" for i in ids],
            "amount": pa.array([Decimal(f"{i}.25") for i in ids], pa.decimal128(12, 2)),
            "ratio": [i / 4 for i in ids],
            "paid": [i % 2 == 0 for i in ids],
            "day": [date(2026, 11, 1 + i % 28) for i in ids],
            "at": pa.array(
                [datetime(2026, 11, 20, 8, i % 60, tzinfo=UTC) for i in ids],
                pa.timestamp("us", "UTC"),
            ),
        }
    )


def test_a_missing_table_is_made_from_the_frame_schema(target: Target) -> None:
    assert target.load(sales(range(1, 4))) == 3
    got = target.rows(columns="id, region, amount, ratio, paid, day")
    assert got == [
        (1, "r1", Decimal("1.25"), 0.25, False, date(2026, 11, 2)),
        (2, "r2", Decimal("2.25"), 0.5, True, date(2026, 11, 3)),
        (3, "r0", Decimal("3.25"), 0.75, False, date(2026, 11, 4)),
    ] or got == [  # SQLite has no decimal, boolean or date type of its own
        (1, "r1", 1.25, 0.25, 0, "2026-11-02"),
        (2, "r2", 2.25, 0.5, 1, "2026-11-03"),
        (3, "r0", 3.25, 0.75, 0, "2026-11-04"),
    ]
    back = sql.extract(
        target.handle if isinstance(target.handle, sa.Engine) else _duck_url(target),
        "sales",
        as_="arrow",
    )
    expected = sales(range(1, 4))
    if isinstance(target.handle, sa.Engine) and target.handle.dialect.name == "sqlite":
        # SQLite keeps no time zone: an aware timestamp comes back as its UTC wall time.
        expected = expected.set_column(6, "at", expected.column("at").cast(pa.timestamp("us")))
    assert back.sort_by("id").to_pylist() == expected.to_pylist()


def _duck_url(target: Target) -> str:
    (path,) = [r[2] for r in target.handle.execute("PRAGMA database_list").fetchall()]
    target.handle.close()  # one process, one writer: the engine opens it next
    return f"duckdb:///{path}"


def test_append_adds_and_replace_replaces(target: Target) -> None:
    target.load(sales(range(1, 4)))
    target.load(sales(range(4, 6)), mode="append")
    assert [r[0] for r in target.rows(columns="id")] == [1, 2, 3, 4, 5]
    target.load(sales(range(10, 12)), mode="replace")
    assert [r[0] for r in target.rows(columns="id")] == [10, 11]


def test_upsert_merges_on_keys_and_twice_is_once(target: Target) -> None:
    target.load(sales(range(1, 4)), mode="upsert", keys=["id"])
    changed = sales(range(2, 6), note="-new")
    for _ in range(2):
        assert target.load(changed, mode="upsert", keys=["id"]) == 4
        assert target.rows(columns="id, region") == [
            (1, "r1"),
            (2, "r2-new"),
            (3, "r0-new"),
            (4, "r1-new"),
            (5, "r2-new"),
        ]
    # A value becoming null is a change too (rows equal to the frame's are left alone).
    nulled = changed.to_pylist()
    nulled[-1]["region"] = None
    target.load(nulled, mode="upsert", keys=["id"])
    assert target.rows(columns="id, region")[-2:] == [(4, "r1-new"), (5, None)]
    # The key's unique index was made with the table: a duplicate append is refused.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate|constraint"):
        target.load(sales(range(1, 2)), mode="append")
    assert len(target.rows()) == 5


def test_upsert_on_keys_alone_only_adds_new_rows(target: Target) -> None:
    target.load([{"id": 1}, {"id": 2}], table="seen", mode="upsert", keys=["id"])
    target.load([{"id": 2}, {"id": 3}], table="seen", mode="upsert", keys=["id"])
    assert target.rows("seen") == [(1,), (2,), (3,)]


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_a_failure_in_the_middle_leaves_the_table_as_it_was(
    target: Target, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_load, "BATCH_ROWS", 100)  # the bad row comes in the third batch
    bad = sales(range(1000, 1250)).to_pylist()
    bad[-1]["id"] = None  # the key column is NOT NULL
    # A table made by the failed load is gone with it.
    with pytest.raises(Exception, match=r"(?i)null"):
        target.load(bad, mode=mode, keys=["id"])
    assert not target.exists()
    target.load(sales(range(1, 4)), keys=["id"])
    with pytest.raises(Exception, match=r"(?i)null"):
        target.load(bad, mode=mode, keys=["id"])
    assert [r[0] for r in target.rows(columns="id")] == [1, 2, 3]


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "dicts"])
def test_every_kind_of_frame_loads_the_same_rows(target: Target, kind: str) -> None:
    data = {"id": [1, 2], "name": ["a", None], "score": [1.5, 2.5]}
    frame: Any = {
        "pandas": lambda: pd.DataFrame(data),
        "polars": lambda: pl.DataFrame(data),
        "arrow": lambda: pa.table(data),
        "dicts": lambda: pa.table(data).to_pylist(),
    }[kind]()
    assert target.load(frame, table="scores", mode="upsert", keys=["id"]) == 2
    assert target.rows("scores") == [(1, "a", 1.5), (2, None, 2.5)]


def test_bad_calls_say_what_is_wrong(target: Target) -> None:
    with pytest.raises(ValueError, match="upsert needs keys"):
        target.load(sales(range(1, 2)), mode="upsert")
    with pytest.raises(ValueError, match="mode must be one of"):
        target.load(sales(range(1, 2)), mode="merge")
    with pytest.raises(ValueError, match="not columns of the frame"):
        target.load(sales(range(1, 2)), mode="upsert", keys=["nope"])
    assert not target.exists()
