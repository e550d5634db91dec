"""``load`` into DuckDB: the Arrow table is scanned in place by DuckDB (no row conversion).

Used for a ``duckdb`` connection (the transaction is begun and ended here) and for an Engine of
the ``duckdb_engine`` dialect (inside the Engine's transaction, on its DBAPI connection).
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_VIEW = "legato_frame"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_duckdb_connection(
    duck: Any, data: pa.Table, name: str, mode: str, keys: list[str], schema: str | None
) -> int:
    """``load`` on a ``duckdb`` connection, in a transaction of its own."""
    duck.execute("BEGIN TRANSACTION")
    try:
        written = load_duckdb(duck, data, name, mode, keys, schema)
    except BaseException:
        duck.execute("ROLLBACK")
        with suppress(Exception):
            duck.unregister(_VIEW)
        raise
    duck.execute("COMMIT")
    return written


def load_duckdb(
    duck: Any, data: pa.Table, name: str, mode: str, keys: list[str], schema: str | None
) -> int:
    """``load`` on a DuckDB connection already in a transaction."""
    target = f"{_ident(schema)}.{_ident(name)}" if schema else _ident(name)
    cols = ", ".join(_ident(c) for c in data.column_names)
    exists = duck.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
        " AND table_schema = coalesce(?, current_schema())",
        [name, schema],
    ).fetchall()[0][0]
    duck.register(_VIEW, data)
    try:
        if not exists:
            duck.execute(f"CREATE TABLE {target} AS SELECT * FROM {_VIEW} LIMIT 0")
            for key in keys:  # as on the other databases: a key is never null
                duck.execute(f"ALTER TABLE {target} ALTER COLUMN {_ident(key)} SET NOT NULL")
            if keys:
                index = _ident(f"{name}_{'_'.join(keys)}_key")
                keyed = ", ".join(_ident(k) for k in keys)
                duck.execute(f"CREATE UNIQUE INDEX {index} ON {target} ({keyed})")
        elif mode == "replace":
            duck.execute(f"DELETE FROM {target}")
        merge = ""
        if mode == "upsert":
            changed = [c for c in data.column_names if c not in keys]
            keyed = ", ".join(_ident(k) for k in keys)
            merge = f" ON CONFLICT ({keyed}) " + (
                "DO UPDATE SET " + ", ".join(f"{_ident(c)} = excluded.{_ident(c)}" for c in changed)
                if changed
                else "DO NOTHING"
            )
        duck.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {_VIEW}{merge}")
    finally:
        # After a failed statement the transaction refuses everything until it is rolled back:
        # the view is then dropped by the caller's rollback path (or replaced by the next load).
        with suppress(Exception):
            duck.unregister(_VIEW)
    return int(data.num_rows)
