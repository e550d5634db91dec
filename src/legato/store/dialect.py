"""Where SQLite and PostgreSQL differ, in one place; the query modules ask here.

SQLite has one writer at a time (write transactions begin IMMEDIATE), so row locks and
advisory locks are needed on PostgreSQL only, where several schedulers write at once. The
lease clock expressions (``statements.lease_now``/``lease_until``) compile per dialect too, and
so do the durations of the overview's statistics (``stats_store``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Select,
    Text,
    bindparam,
    case,
    cast,
    extract,
    func,
    text,
)

from legato.store import db

S = TypeVar("S", bound=Select[Any])


def has_row_locks(backend: db.Backend) -> bool:
    """Whether concurrent writers exist, so rows must be locked (PostgreSQL)."""
    return backend == "postgresql"


def for_update(stmt: S, backend: db.Backend, **options: Any) -> S:
    """``stmt`` with ``FOR UPDATE`` (``options``: skip_locked, of) where rows can be locked."""
    return stmt.with_for_update(**options) if has_row_locks(backend) else stmt


def lock_names(conn: Connection, names: Iterable[str]) -> None:
    """Hold a transaction lock on each name (PostgreSQL advisory locks), sorted so that two
    lockers of overlapping sets always lock in the same order. SQLite: one writer, no-op."""
    if conn.dialect.name != "postgresql":
        return
    for name in sorted(names):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"legato:{name}"})


def insert_ignoring_conflict(backend: db.Backend, table: Any) -> Any:
    """An ``INSERT`` into ``table`` that does nothing when the row's key exists."""
    # Imported here: the PostgreSQL dialect costs ~35 ms to import, wasted on SQLite.
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    return insert(table).on_conflict_do_nothing()


def insert_if_missing(conn: Connection, table: Any, values: Mapping[str, Any]) -> bool:
    """Insert a row unless one with its key exists (a concurrent creator won); True if
    this call inserted it. Unlike a plain INSERT, losing the race is no error."""
    backend: db.Backend = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    done = conn.execute(insert_ignoring_conflict(backend, table).values(dict(values)))
    return bool(done.rowcount)


def seconds_between(start: Any, end: Any, backend: db.Backend) -> Any:
    """``end - start`` in seconds, as a float."""
    if backend == "sqlite":
        # SQLite stores text; a julianday double is exact to about 0.05 ms in this era.
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(extract("epoch", end - start), Float)


def text_values(values: list[str], backend: db.Backend) -> Any:
    """A table of one column, ``value``, holding ``values``, bound as one parameter (a JSON
    array read by ``json_each`` on SQLite, an array ``unnest``ed on PostgreSQL): a query per
    list, however long, compiled once."""
    if backend == "sqlite":
        return func.json_each(json.dumps(values)).table_valued("value").alias("given")
    from sqlalchemy.dialects.postgresql import ARRAY

    given = cast(bindparam("given_values", values, type_=ARRAY(Text)), ARRAY(Text))
    return func.unnest(given).table_valued("value").render_derived(name="given")


def json_int(column: Any, name: str, backend: db.Backend) -> Any:
    """The integer at the top-level ``name`` of the JSON text in ``column`` (NULL when it is
    missing or not an integer)."""
    if backend == "sqlite":
        found = func.json_extract(column, f"$.{name}")
        return case((func.typeof(found) == "integer", found), else_=None)
    from sqlalchemy.dialects.postgresql import JSONB  # see insert_ignoring_conflict

    shown = func.jsonb_extract_path_text(cast(column, JSONB), name)
    return case((shown.regexp_match("^-?[0-9]{1,18}$"), cast(shown, BigInteger)), else_=None)


def has_percentile_cont(backend: db.Backend) -> bool:
    """Whether the database computes percentiles itself (``percentile_cont``: PostgreSQL)."""
    return backend == "postgresql"



def unindexed(column: Any, backend: db.Backend) -> Any:
    """``column`` in a form SQLite's planner cannot answer from an index (``col || ''``), so
    that it keeps to the index of another condition, a time range, instead of guessing
    without statistics. Unchanged on PostgreSQL, whose planner has them."""
    return column.concat("") if backend == "sqlite" else column
