"""SQL extract in full from PostgreSQL, SQLite and DuckDB: tables, queries and SQLAlchemy
selects into pandas, polars and Arrow, read in chunks of one schema, and the calls refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa

from legato.connectors import sql

DATABASES = ("postgresql", "sqlite", "duckdb")


@pytest.fixture(params=DATABASES)
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[sa.Engine]:
    """A database holding ``items``: 25 rows, ``note`` null on the first 12."""
    url = {
        "postgresql": lambda: store_url_for("postgresql"),
        "sqlite": lambda: f"sqlite:///{tmp_path / 'shop.db'}",
        "duckdb": lambda: f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
    }[request.param]()
    made = sa.create_engine(url)
    with made.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER, price FLOAT, note VARCHAR)")
        conn.exec_driver_sql("CREATE TABLE no_items (id INTEGER, name VARCHAR)")
        items = sa.table("items", sa.column("id"), sa.column("price"), sa.column("note"))
        rows = [{"id": i, "price": i / 2, "note": None if i <= 12 else f"n{i}"} for i in range(25)]
        conn.execute(items.insert(), rows)
    yield made
    made.dispose()


def test_a_table_comes_whole_into_each_kind_of_frame(engine: sa.Engine) -> None:
    arrow = sql.extract(engine, "items", as_="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == 25
    assert arrow.column_names == ["id", "price", "note"]
    frame = sql.extract(engine, "items")
    assert isinstance(frame, pd.DataFrame) and frame["price"].sum() == sum(i / 2 for i in range(25))
    polars = sql.extract(engine, "items", as_="polars")
    assert isinstance(polars, pl.DataFrame) and polars["note"].null_count() == 13


def test_columns_where_and_queries_pick_the_rows(engine: sa.Engine) -> None:
    picked = sql.extract(
        engine, "items", columns=["id"], where="price >= :least", params={"least": 11}, as_="arrow"
    )
    assert picked.column_names == ["id"] and sorted(picked.column("id").to_pylist()) == [22, 23, 24]
    query = sql.extract(engine, "SELECT count(*) AS n FROM items WHERE note IS NULL", as_="arrow")
    assert query.to_pylist() == [{"n": 13}]
    items = sa.table("items", sa.column("id"), sa.column("price"))
    select = sa.select(items.c.id).where(items.c.id < 3)
    assert sorted(sql.extract(engine, select, as_="arrow").column("id").to_pylist()) == [0, 1, 2]


def test_chunks_share_one_schema_even_when_a_column_starts_null(engine: sa.Engine) -> None:
    chunks = list(sql.extract_batches(engine, "items", chunk_rows=10))
    assert [c.num_rows for c in chunks] == [10, 10, 5]
    # The first chunk's notes are all null; later chunks keep the type found in the second.
    assert chunks[1].schema.field("note").type == chunks[2].schema.field("note").type
    assert pa.types.is_string(chunks[1].schema.field("note").type)
    whole = sql.extract(engine, "items", chunk_rows=10, as_="arrow")
    assert pa.types.is_string(whole.schema.field("note").type) and whole.num_rows == 25


def test_an_empty_table_gives_an_empty_frame_with_its_columns(engine: sa.Engine) -> None:
    empty = sql.extract(engine, "no_items", as_="arrow")
    assert empty.num_rows == 0 and empty.column_names == ["id", "name"]


def test_wrong_calls_are_refused_with_the_reason(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="needs ctx=ctx"):
        sql.extract(engine, "items", cursor="id")
    with pytest.raises(ValueError, match="as_ must be one of"):
        sql.extract(engine, "items", as_="excel")
    with pytest.raises(ValueError, match="chunk_rows must be at least 1"):
        sql.extract(engine, "items", chunk_rows=0)
