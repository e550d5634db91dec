"""SQL connectors: ``extract`` a table or query into a frame, fully or incrementally by a cursor
column, and ``load`` a frame into a table (append, replace, upsert) — see docs/connectors-sql.md.

Both take a SQLAlchemy Engine (what the ``sql`` resource gives a task) or a database URL.
Rows are read with a server-side cursor where the driver has one (``stream_results``), in chunks
of ``chunk_rows``, so a big table is never held twice in the driver and in the frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from legato.connectors.rows import FRAME_KINDS, FrameKind, from_arrow
from legato.connectors.sql_load import load

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy import ColumnElement, Connection, Engine, FromClause, Select

    from legato.definitions.context import Context
    from legato.domain.cursors import Window

__all__ = ["extract", "extract_batches", "load"]

#: Rows fetched from the server at a time.
CHUNK_ROWS = 50_000
_NAME = re.compile(r"^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$")


@contextmanager
def engine_of(source: Engine | str) -> Iterator[Engine]:
    """``source`` as an Engine: itself, or one made for a URL (and disposed of after)."""
    if not isinstance(source, str):
        yield source
        return
    import sqlalchemy as sa

    engine = sa.create_engine(source)
    try:
        yield engine
    finally:
        engine.dispose()


def _source(conn: Connection, what: Any) -> tuple[FromClause, str | None]:
    """What ``extract`` reads from, and its name when it is a table (None for a query). On
    SQLite a table named by a string is reflected, so that its columns come back (and cursor
    bounds are bound) with their types: its driver knows none (dates are text)."""
    import sqlalchemy as sa

    if isinstance(what, sa.Table | sa.TableClause):
        return what, what.fullname
    if isinstance(what, sa.Select):
        return what.subquery("legato_source"), None
    if isinstance(what, sa.TextClause):
        return what.columns().subquery("legato_source"), None
    if isinstance(what, str):
        if _NAME.match(what):
            schema, _, name = what.rpartition(".")
            if conn.dialect.name == "sqlite":
                table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema or None)
                return table, what
            return sa.table(name, schema=schema or None), what
        return sa.text(what).columns().subquery("legato_source"), None
    raise TypeError(f"extract reads a table name, a Table, a query or SQL text, not {what!r}")


def _column(src: FromClause, name: str) -> ColumnElement[Any]:
    import sqlalchemy as sa

    return src.c[name] if name in src.c else sa.column(name)


def _condition(where: Any) -> ColumnElement[bool] | None:
    import sqlalchemy as sa

    if where is None or not isinstance(where, str):
        return where
    return sa.text(where)  # type: ignore[return-value]


def _select(
    src: FromClause, columns: Sequence[str] | None, where: Any, window: Window | None, cursor: str
) -> Select[Any]:
    import sqlalchemy as sa

    picked: list[Any] = [_column(src, c) for c in columns] if columns else list(src.c)
    picked = picked or [sa.literal_column("*")]
    stmt = sa.select(*picked).select_from(src)
    condition = _condition(where)
    if condition is not None:
        stmt = stmt.where(condition)
    if window is not None:
        col = _column(src, cursor)
        if window.high is None:
            return stmt.where(sa.false())
        if window.low is not None:
            stmt = stmt.where(col > window.low)
        stmt = stmt.where(col <= window.high)
    return stmt


def _window(
    conn: Connection,
    src: FromClause,
    where: Any,
    params: dict[str, Any],
    cursor: str,
    name: str,
    ctx: Context,
) -> Window:
    import sqlalchemy as sa

    def current_max() -> Any:
        column = _column(src, cursor)
        stmt = sa.select(sa.func.max(column)).select_from(src)
        condition = _condition(where)
        if condition is not None:
            stmt = stmt.where(condition)
        return conn.execute(stmt, params).scalar()

    return ctx.cursors.window(name, high=current_max)


def extract_batches(
    source: Engine | str,
    table_or_query: Any,
    *,
    columns: Sequence[str] | None = None,
    where: Any = None,
    cursor: str | None = None,
    ctx: Context | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pa.Table]:
    """The rows ``extract`` reads, as Arrow tables of at most ``chunk_rows`` rows each, read
    from the server as they are consumed (bounded memory on tables of any size)."""
    import pyarrow as pa

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    if cursor is not None and ctx is None:
        raise ValueError(
            "an incremental extract (cursor=...) needs ctx=ctx: the window it reads is kept "
            "per pipeline and partition in the run's store"
        )
    with engine_of(source) as engine, engine.connect() as conn:
        src, table_name = _source(conn, table_or_query)
        if cursor is not None and name is None and table_name is None:
            raise ValueError("an incremental extract of a query needs name=... for its cursor")
        window = None
        if cursor is not None:
            assert ctx is not None
            label = name if name is not None else f"{table_name}.{cursor}"
            window = _window(conn, src, where, params or {}, cursor, label, ctx)
            ctx.log.info("extract %s: window (%r, %r]", label, window.low, window.high)
        stmt = _select(src, columns, where, window, cursor or "")
        streamed = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows)
        result = streamed.execute(stmt, params or {})
        keys = list(result.keys())
        types: dict[str, pa.DataType] = {}
        sent = False
        for part in result.partitions(chunk_rows):
            sent = True
            values = zip(*part, strict=True)
            yield pa.table({k: _array(v, k, types) for k, v in zip(keys, values, strict=True)})
        if not sent:
            yield pa.table({k: pa.array([], pa.null()) for k in keys})


def _array(values: Sequence[Any], key: str, types: dict[str, pa.DataType]) -> pa.Array:
    """``values`` as an Arrow array of the type the column had in the chunks before (so that
    every chunk has one schema), else of the type they show (remembered unless all null)."""
    import pyarrow as pa

    known = types.get(key)
    if known is not None:
        try:
            return pa.array(values, known)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # the column changed (ints, then floats): the caller's concat promotes it
    array = pa.array(values)
    if not pa.types.is_null(array.type):
        types[key] = array.type
    return array


class ExtractOptions(TypedDict, total=False):
    """What ``extract`` passes on to ``extract_batches``."""

    columns: Sequence[str] | None
    where: Any
    cursor: str | None
    ctx: Context | None
    name: str | None
    params: dict[str, Any] | None
    chunk_rows: int


def extract(
    source: Engine | str,
    table_or_query: Any,
    *,
    as_: FrameKind = "pandas",
    **options: Unpack[ExtractOptions],
) -> Any:
    """Read a table or query into a frame (``as_``: "pandas", "arrow" or "polars").

    ``table_or_query``: a table name (``"orders"``, ``"shop.orders"``), a SQLAlchemy Table or
    Select, or SQL text. ``columns`` picks columns, ``where`` filters (SQL text, with
    ``params`` bound, or a SQLAlchemy condition).

    With ``cursor="updated_at"`` and ``ctx`` the read is incremental: only rows with
    ``low < updated_at <= high``, the window ``ctx.cursors`` keeps for this run's partition (or
    for the run): the next run reads from this one's high on, and a re-run of the partition
    reads the same window again. The window's name is ``"TABLE.CURSOR"`` unless ``name`` is
    given (which a query needs). ``chunk_rows``: rows fetched from the server at a time.
    """
    import pyarrow as pa

    if as_ not in FRAME_KINDS:
        raise ValueError(f"as_ must be one of {', '.join(FRAME_KINDS)}, not {as_!r}")
    chunks = list(extract_batches(source, table_or_query, **options))
    table = pa.concat_tables(chunks, promote_options="permissive")
    return from_arrow(table, as_)
