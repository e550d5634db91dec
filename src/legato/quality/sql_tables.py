"""The built-in checks on a SQL table, run in its database through a SQLAlchemy engine (a
``sql`` resource's): each is one or two queries that count and sample there, so the table
is never loaded. Also the ``sql`` check's own query, through an engine or, on a frame,
with DuckDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.definitions.check_spec import Check
from legato.quality.columnar import count_within, fresh_within, schema_against
from legato.quality.outcome import SAMPLE_ROWS, Found, sample_of
from legato.quality.repeats import repeats_found

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["on_table", "query_found", "run_on_frame", "run_query"]


@contextmanager
def _connection(engine: Any) -> Iterator[Any]:
    if hasattr(engine, "connect") and not hasattr(engine, "execute"):
        with engine.connect() as conn:
            yield conn
    else:  # already a Connection
        yield engine


def _table(name: str, *columns: str) -> Any:
    import sqlalchemy as sa

    schema, _, table = name.rpartition(".")
    return sa.table(table, *(sa.column(c) for c in columns), schema=schema or None)


def _rows_where(conn: Any, t: Any, condition: Any, what: str) -> Found:
    """Count the rows of table ``t`` where ``condition`` holds, and sample them."""
    import sqlalchemy as sa

    flagged = sa.case((condition, 1), else_=0)
    total, failed = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(flagged), 0)).select_from(t)
    ).one()
    total, failed = int(total), int(failed)
    sample: list[dict[str, Any]] = []
    if failed:
        query: Any = sa.select(sa.literal_column("*")).select_from(t).where(condition)
        sample = sample_of(r._asdict() for r in conn.execute(query.limit(SAMPLE_ROWS)))
    message = f"{failed} of {total} rows {what}" if failed else f"all {total} rows pass"
    return Found(ok=not failed, message=message, failed=failed, total=total, sample=sample)


def _count(conn: Any, name: str) -> int:
    import sqlalchemy as sa

    return int(conn.execute(sa.select(sa.func.count()).select_from(_table(name))).scalar_one())


def not_null(check: Check, conn: Any, name: str) -> Found:
    import sqlalchemy as sa

    columns = check.args["columns"]
    condition = sa.or_(*(sa.column(c).is_(None) for c in columns))
    return _rows_where(conn, _table(name), condition, f"have a null in {', '.join(columns)}")


def unique(check: Check, conn: Any, name: str) -> Found:
    import sqlalchemy as sa

    columns = check.args["columns"]
    t = _table(name)
    keys: list[Any] = [sa.column(c) for c in columns]
    groups = (
        sa.select(*keys, sa.func.count().label("n"))
        .select_from(t)
        .where(sa.and_(*(k.is_not(None) for k in keys)))
        .group_by(*keys)
        .having(sa.func.count() > 1)
        .subquery("dupes")
    )
    failed, repeated = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0), sa.func.count())
    ).one()
    total, failed = _count(conn, name), int(failed)
    if not failed:
        return Found(ok=True, message=f"all {total} rows pass", failed=0, total=total)
    some = sa.select(*(groups.c[c] for c in columns)).limit(SAMPLE_ROWS).subquery("some")
    t = _table(name, *columns).alias("t")
    on = sa.and_(*(t.c[c] == some.c[c] for c in columns))
    query: Any = sa.select(sa.literal_column("t.*")).select_from(t.join(some, on))
    found = [r._asdict() for r in conn.execute(query.limit(SAMPLE_ROWS))]
    return repeats_found(list(columns), failed, int(repeated), total, found)


def accepted_values(check: Check, conn: Any, name: str) -> Found:
    import sqlalchemy as sa

    col: Any = sa.column(check.args["column"])
    values = list(check.args["values"])
    condition = sa.and_(col.is_not(None), col.not_in(values))
    shown = ", ".join(repr(v) for v in values[:10])
    what = f"have a {check.args['column']} outside {shown}"
    return _rows_where(conn, _table(name), condition, what)


def row_count(check: Check, conn: Any, name: str) -> Found:
    return count_within(check, _count(conn, name))


def schema(check: Check, conn: Any, name: str) -> Found:
    import sqlalchemy as sa

    schema_name, _, table = name.rpartition(".")
    found = sa.inspect(conn).get_columns(table, schema=schema_name or None)
    actual = {c["name"]: _arrow_name(c["type"]) for c in found}
    return schema_against(check, actual, None)


def _arrow_name(sql_type: Any) -> str:
    """The Arrow type a SQL column's values come back as (near enough to compare)."""
    import sqlalchemy as sa

    for sql_kind, arrow in (
        (sa.Boolean, "bool"),
        (sa.SmallInteger, "int16"),
        (sa.BigInteger, "int64"),
        (sa.Integer, "int64"),
        (sa.Float, "double"),
        (sa.DateTime, "timestamp[us]"),
        (sa.Date, "date32[day]"),
        (sa.String, "string"),
        (sa.LargeBinary, "binary"),
    ):
        if isinstance(sql_type, sql_kind):
            if isinstance(sql_type, sa.DateTime) and getattr(sql_type, "timezone", False):
                return "timestamp[us, tz=UTC]"
            return arrow
    if isinstance(sql_type, sa.Numeric):
        precision, scale = sql_type.precision, sql_type.scale
        return f"decimal128({precision}, {scale or 0})" if precision else "decimal128(38, 9)"
    return str(sql_type).lower()


def relationship(check: Check, conn: Any, name: str) -> Found:
    import sqlalchemy as sa

    other = check.args.get("to_table")
    if not other:
        raise ValueError(
            "a relationship on a SQL table needs to_table= (the other side's table in the "
            "same database)"
        )
    col, to_col = check.args["column"], check.args["to_column"]
    t = _table(name, col)
    theirs = _table(other, to_col).alias("other")
    match = sa.exists().where(theirs.c[to_col] == t.c[col])
    condition = sa.and_(t.c[col].is_not(None), ~match)
    return _rows_where(conn, t, condition, f"have a {col} not in {other}")


def freshness(check: Check, conn: Any, name: str, now: datetime) -> Found:
    import sqlalchemy as sa

    newest, total = conn.execute(
        sa.select(sa.func.max(sa.column(check.args["column"])), sa.func.count()).select_from(
            _table(name)
        )
    ).one()
    return fresh_within(check, newest, now, int(total))


_BUILTINS: dict[str, Callable[[Check, Any, str], Found]] = {
    "not_null": not_null,
    "unique": unique,
    "accepted_values": accepted_values,
    "row_count": row_count,
    "schema": schema,
    "relationship": relationship,
}


def on_table(check: Check, engine: Any, name: str, now: datetime) -> Found:
    """Evaluate a built-in ``check`` on the SQL table ``name`` ("table" or "schema.table")."""
    with _connection(engine) as conn:
        if check.kind == "freshness":
            return freshness(check, conn, name, now)
        if check.kind == "sql":
            return _query(check, conn)
        run = _BUILTINS.get(check.kind)
        if run is None:
            raise ValueError(f"a {check.kind} check cannot run on a SQL table")
        return run(check, conn, name)


def run_query(check: Check, engine: Any) -> Found:
    """Run a ``sql`` check's query through ``engine``."""
    with _connection(engine) as conn:
        return _query(check, conn)


def _query(check: Check, conn: Any) -> Found:
    import sqlalchemy as sa

    result = conn.execute(sa.text(check.args["query"]))
    return query_found(check, list(result.keys()), result)


def run_on_frame(check: Check, table: pa.Table) -> Found:
    """Run a ``sql`` check's query on a task's output with DuckDB, the output being the
    table ``data`` (no copy: DuckDB reads the Arrow table where it is)."""
    try:
        import duckdb
    except ImportError:
        raise ValueError(
            "a sql check runs through a SQL engine (engine=), or on a frame with DuckDB: "
            'pip install "legato[duckdb]"'
        ) from None
    with duckdb.connect() as con:
        con.register("data", table)
        cursor = con.execute(check.args["query"])
        columns = [d[0] for d in cursor.description or ()]
        return replace(query_found(check, columns, cursor), total=table.num_rows)


def query_found(check: Check, columns: list[str], cursor: Any) -> Found:
    """What a ``sql`` check's query gave (``cursor``, with ``fetchmany`` and rows to
    iterate): a count, or the failing rows."""
    rows = cursor.fetchmany(SAMPLE_ROWS + 1)
    returns = check.args.get("returns", "auto")
    one_number = (
        len(columns) == 1
        and len(rows) == 1
        and isinstance(rows[0][0], int)
        and not isinstance(rows[0][0], bool)
    )
    if returns == "count" or (returns == "auto" and one_number and "count" in columns[0].lower()):
        if len(rows) != 1 or len(columns) != 1:
            raise ValueError("the query of a count check must give one row of one number")
        failed = int(rows[0][0])
        message = f"{failed} failing rows" if failed else "no failing rows"
        return Found(ok=not failed, message=message, failed=failed)
    failed = len(rows)
    if failed > SAMPLE_ROWS:
        failed += sum(len(batch) for batch in iter(lambda: cursor.fetchmany(10_000), []))
    sample = sample_of(dict(zip(columns, row, strict=True)) for row in rows)
    message = f"the query gave {failed} failing rows" if failed else "no failing rows"
    return Found(ok=not failed, message=message, failed=failed, sample=sample)
