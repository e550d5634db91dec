"""``load``: write a frame into a SQL table — append, replace or upsert — in one transaction.

A missing table is created from the frame's schema (Arrow types mapped to SQL types), with a
unique index on ``keys`` when they are given; a failure anywhere (a bad row in the last chunk,
a constraint) leaves the table as it was, created or not. Each database gets its fastest path:

- PostgreSQL (psycopg 3): ``COPY`` of the frame as CSV, straight into the table (append,
  replace) or into a temporary staging table merged with ``INSERT ... ON CONFLICT DO UPDATE``;
- DuckDB (a ``duckdb`` connection, or an Engine of the ``duckdb_engine`` dialect): the Arrow
  table is scanned in place by ``INSERT ... SELECT`` (``ON CONFLICT`` for upsert);
- SQLite and other dialects: SQLAlchemy's batched ``INSERT`` (``ON CONFLICT`` on SQLite).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from legato.connectors.rows import plain, to_arrow

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy import Connection, Engine, Table
    from sqlalchemy.types import TypeEngine

MODES = ("append", "replace", "upsert")
#: Rows written per batch (a CSV block for COPY, an executemany elsewhere).
BATCH_ROWS = 100_000


def sql_type(t: pa.DataType) -> TypeEngine[Any]:
    """The SQLAlchemy type a column of Arrow type ``t`` is created with."""
    import pyarrow as pa
    import sqlalchemy as sa

    types = pa.types
    if types.is_dictionary(t):
        return sql_type(t.value_type)
    if types.is_boolean(t):
        return sa.Boolean()
    if types.is_int8(t) or types.is_int16(t) or types.is_uint8(t):
        return sa.SmallInteger()
    if types.is_int32(t) or types.is_uint16(t):
        return sa.Integer()
    if types.is_int64(t) or types.is_uint32(t):
        return sa.BigInteger()
    if types.is_uint64(t):
        return sa.Numeric(20, 0)
    if types.is_float16(t) or types.is_float32(t):
        return sa.REAL()
    if types.is_floating(t):
        return sa.Double()
    if types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if types.is_string(t) or types.is_large_string(t) or types.is_null(t):
        return sa.Text()
    if types.is_binary(t) or types.is_large_binary(t) or types.is_fixed_size_binary(t):
        return sa.LargeBinary()
    if types.is_timestamp(t):
        return sa.DateTime(timezone=t.tz is not None)
    if types.is_date(t):
        return sa.Date()
    if types.is_time(t):
        return sa.Time()
    if types.is_duration(t):
        return sa.Interval()
    if types.is_nested(t):
        return sa.JSON(none_as_null=True)
    raise TypeError(f"no SQL type for the Arrow type {t}")


def _table_for(frame: pa.Table, name: str, schema: str | None, keys: Sequence[str]) -> Table:
    import sqlalchemy as sa

    meta = sa.MetaData()
    table = sa.Table(
        name,
        meta,
        *(sa.Column(f.name, sql_type(f.type), nullable=f.name not in keys) for f in frame.schema),
        schema=schema,
    )
    if keys:
        sa.Index(f"{name}_{'_'.join(keys)}_key", *(table.c[k] for k in keys), unique=True)
    return table


def load(
    target: Any,
    frame: Any,
    table: str,
    *,
    mode: str = "append",
    keys: Sequence[str] = (),
    schema: str | None = None,
) -> int:
    """Write ``frame`` into ``table`` in one transaction; returns the rows written.

    ``target``: a SQLAlchemy Engine, a database URL, or a ``duckdb`` connection. ``frame``: a
    pandas or polars DataFrame, a pyarrow Table, or a list of dicts. ``mode``: "append" adds the
    rows; "replace" removes the table's rows first (its definition, indexes and grants stay);
    "upsert" inserts new rows and updates those whose ``keys`` match one already there, so
    loading the same frame twice leaves the same rows. A missing table is created from the
    frame's schema, with a unique index on ``keys`` if they are given.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    keys = list(keys)
    if mode == "upsert" and not keys:
        raise ValueError("an upsert needs keys=[...]: the columns a row is matched on")
    data = plain(to_arrow(frame))
    missing = [k for k in keys if k not in data.column_names]
    if missing:
        raise ValueError(f"keys {missing} are not columns of the frame ({data.column_names})")
    if type(target).__module__.split(".", 1)[0].lstrip("_") == "duckdb":
        from legato.connectors.sql_duckdb import load_duckdb_connection

        return load_duckdb_connection(target, data, table, mode, keys, schema)
    from legato.connectors.sql import engine_of

    with engine_of(target) as engine:
        return _load_engine(engine, data, table, mode, keys, schema)


def _load_engine(
    engine: Engine, data: pa.Table, name: str, mode: str, keys: list[str], schema: str | None
) -> int:
    import sqlalchemy as sa

    dialect = engine.dialect.name
    if mode == "upsert" and dialect not in ("postgresql", "sqlite", "duckdb"):
        raise ValueError(f"upsert is done on PostgreSQL, SQLite and DuckDB, not {dialect}")
    with engine.begin() as conn:
        if dialect == "sqlite":
            # pysqlite begins a transaction at the first INSERT only: the table's creation
            # would be committed on its own.
            conn.exec_driver_sql("BEGIN")
        if dialect == "duckdb":
            from legato.connectors.sql_duckdb import load_duckdb

            return load_duckdb(conn.connection.driver_connection, data, name, mode, keys, schema)
        if sa.inspect(conn).has_table(name, schema=schema):
            table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
            unknown = [c for c in data.column_names if c not in table.c]
            if unknown:
                raise ValueError(f"table {table.fullname} has no columns {unknown}")
            if mode == "replace":
                _empty(conn, table)
        else:
            table = _table_for(data, name, schema, keys)
            table.create(conn)
            if mode == "upsert" and dialect == "postgresql":
                # Nobody else sees the table before this transaction ends, so no row of the
                # frame can meet one already there: a plain COPY does the same, twice as fast
                # (and a key twice in the frame fails either way: ON CONFLICT DO UPDATE
                # refuses to change a row twice).
                mode = "append"
        if dialect == "postgresql" and conn.dialect.driver == "psycopg":
            return _copy_postgresql(conn, data, table, mode, keys)
        return _insert(conn, data, table, mode, keys)


def _empty(conn: Connection, table: Table) -> None:
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        # Transactional, and far quicker than DELETE on a big table.
        conn.execute(sa.text(f"TRUNCATE TABLE {_quoted(conn, table)}"))
    else:
        conn.execute(sa.delete(table))


def _quoted(conn: Connection, table: Table) -> str:
    prep = conn.dialect.identifier_preparer
    return prep.format_table(table)


def _insert(conn: Connection, data: pa.Table, table: Table, mode: str, keys: list[str]) -> int:
    import sqlalchemy as sa

    stmt: Any = sa.insert(table)
    if mode == "upsert":
        from sqlalchemy.dialects.sqlite import insert

        stmt = insert(table)
        changed = [c for c in data.column_names if c not in keys]
        stmt = (
            stmt.on_conflict_do_update(
                index_elements=keys,
                set_={c: stmt.excluded[c] for c in changed},
                where=sa.tuple_(*(table.c[c] for c in changed)).is_distinct_from(
                    sa.tuple_(*(stmt.excluded[c] for c in changed))
                ),
            )
            if changed
            else stmt.on_conflict_do_nothing(index_elements=keys)
        )
    if conn.dialect.name == "sqlite":
        data = _in_utc(data)
    for batch in data.to_batches(BATCH_ROWS):
        rows = batch.to_pylist()
        if rows:
            conn.execute(stmt, rows)
    return data.num_rows


def _in_utc(data: pa.Table) -> pa.Table:
    """``data`` with its aware timestamps in UTC: SQLite keeps a datetime's wall time only."""
    import pyarrow as pa

    schema = pa.schema(
        [
            f.with_type(pa.timestamp(f.type.unit, "UTC"))
            if pa.types.is_timestamp(f.type) and f.type.tz is not None
            else f
            for f in data.schema
        ]
    )
    return data if schema.equals(data.schema) else data.cast(schema)


def _copy_postgresql(
    conn: Connection, data: pa.Table, table: Table, mode: str, keys: list[str]
) -> int:
    from psycopg import sql

    raw = conn.connection.driver_connection
    assert raw is not None
    target = sql.Identifier(*([table.schema] if table.schema else []), table.name)
    cols = cols_of(data.column_names)
    with raw.cursor() as cur:
        into = target
        if mode == "upsert":
            into = sql.Identifier("legato_staging")
            cur.execute(
                sql.SQL(
                    "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
                ).format(into, cols, target)
            )
        copy_frame(cur, data, sql.SQL("COPY {} ({}) FROM STDIN").format(into, cols))
        if mode == "upsert":
            changed = [c for c in data.column_names if c not in keys]
            ours = sql.SQL(", ").join(sql.SQL("{}.{}").format(target, sql.Identifier(c))
                                      for c in changed)  # fmt: skip
            theirs = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c))
                                        for c in changed)  # fmt: skip
            # Rows already as the frame has them are left alone: loading the same frame again
            # (a re-run) writes no new row versions, index entries or WAL for them.
            action = (
                sql.SQL("DO UPDATE SET ({}) = ROW({}) WHERE ({}) IS DISTINCT FROM ({})").format(
                    cols_of(changed), theirs, ours, theirs
                )
                if changed
                else sql.SQL("DO NOTHING")
            )
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
                    target,
                    cols,
                    cols,
                    into,
                    cols_of(keys),
                    action,
                )
            )
    return data.num_rows


def cols_of(names: Sequence[str]) -> Any:
    """``names`` as a comma-separated list of quoted identifiers (psycopg's ``sql``)."""
    from psycopg import sql

    return sql.SQL(", ").join(sql.Identifier(c) for c in names)


def _csv_ready(t: pa.DataType) -> bool:
    """Whether Arrow writes a column of type ``t`` as CSV that PostgreSQL reads back exactly."""
    import pyarrow as pa

    types = pa.types
    return not (
        types.is_binary(t)
        or types.is_large_binary(t)
        or types.is_fixed_size_binary(t)
        or types.is_nested(t)
        or types.is_duration(t)
    )


def copy_frame(cur: Any, data: pa.Table, copy_sql: Any) -> None:
    """``COPY`` the rows of ``data`` with the psycopg cursor ``cur`` (``copy_sql``: ``COPY ...
    FROM STDIN``): as CSV written by Arrow, or row by row for types CSV cannot carry."""
    from psycopg import sql

    if all(_csv_ready(f.type) for f in data.schema):
        import pyarrow.csv as pacsv

        options = pacsv.WriteOptions(include_header=False, batch_size=BATCH_ROWS)
        with cur.copy(sql.SQL("{} (FORMAT csv)").format(copy_sql)) as copy:
            for batch in data.to_batches(BATCH_ROWS):
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                copy.write(buf.getbuffer())
        return
    from psycopg.types.json import Json

    nested = [i for i, f in enumerate(data.schema) if _is_nested(f.type)]
    with cur.copy(copy_sql) as copy:
        for batch in data.to_batches(BATCH_ROWS):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for i in nested:
                columns[i] = [None if v is None else Json(v) for v in columns[i]]
            for row in zip(*columns, strict=True):
                copy.write_row(row)


def _is_nested(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_nested(t))
