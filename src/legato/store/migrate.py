"""Schema migrations, run with Alembic configured in code (no alembic.ini needed).

Importing Alembic costs about half a second, which matters for a CLI that opens the store on
every call. So :func:`ensure_schema` first reads ``alembic_version`` with a plain query and only
imports Alembic when the database is new or behind :data:`HEAD_REVISION`.

Adding a migration: write ``migrations/versions/NNNN_name.py`` (``alembic_config()`` can be
passed to ``alembic.command.revision`` to generate one from ``script.py.mako``), then bump
:data:`HEAD_REVISION`; a test checks the two agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Engine, inspect, text

from legato.domain.records import StoreError
from legato.store.db import WRITE

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest revision in ``migrations/versions``; databases at it open without Alembic.
HEAD_REVISION = "0015"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"

# Key of the PostgreSQL advisory lock that serialises concurrent first-time migrations.
_PG_MIGRATION_LOCK = 0x6C6567_61746F  # "legato"


class Migration(NamedTuple):
    """What :func:`upgrade` did: the revision it found and the one it left, read under its lock."""

    before: str | None
    after: str | None


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    # has_table first: on PostgreSQL a failed SELECT would abort the caller's transaction.
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if not rows:
        return None
    if len(rows) > 1:
        raise StoreError(f"database has several schema heads {sorted(rows)}; expected one")
    return str(rows[0])


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` for the store's migrations (imports Alembic)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; URL-encoded values contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_head() -> str | None:
    """The head revision according to Alembic's script directory (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> list[str]:
    """Every revision in ``migrations/versions``, oldest first (imports Alembic)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def upgrade(engine: Engine, revision: str = "head") -> Migration:
    """Migrate the database to ``revision`` in one write transaction; say from where to where.

    Safe to call from several processes at once: the transaction takes the write lock (SQLite
    ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) before Alembic reads the current version,
    so a latecomer finds the work done (and reports ``before == after``). A ``revision`` older
    than the database's is a no-op: there are no downgrades.
    """
    from alembic import command
    from alembic.util import CommandError

    with engine.execution_options(**WRITE).connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Alembic's batch mode rebuilds a SQLite table by copy, drop and rename. With
            # foreign keys enforced, dropping ``runs`` would cascade-delete every task run,
            # attempt and event. SQLite's own recipe for schema changes: enforcement off (it
            # cannot change inside a transaction), check the keys before committing.
            _sqlite_foreign_keys(conn, on=False)
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                found = current_revision(conn)
                if found is not None and found not in known_revisions():
                    # Alembic would only say it "can't locate revision"; say what that means.
                    raise StoreError(_unknown_revision(found))
                try:
                    command.upgrade(alembic_config(connection=conn), revision)
                except CommandError as exc:
                    raise StoreError(
                        f"cannot migrate the database from revision {found!r} to "
                        f"{revision!r}: {exc}"
                    ) from exc
                # Read in the same transaction: what this call left, not a later writer's.
                after = current_revision(conn)
                if sqlite and after != found:  # the check reads every table: only if needed
                    _check_foreign_keys(conn)
        finally:
            if sqlite:
                _sqlite_foreign_keys(conn, on=True)
    return Migration(found, after)


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    # Straight to the driver: through SQLAlchemy the PRAGMA would autobegin a transaction, in
    # which SQLite ignores it.
    try:
        driver = conn.connection.driver_connection
        assert driver is not None  # only None for a connection already closed
        driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    except Exception:
        if not on:
            raise  # never migrate with enforcement on (see upgrade)
        # The migration is done; rather than hand a connection without enforcement back to
        # the pool, drop it (the next one is configured afresh by the connect hook).
        conn.invalidate()


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise StoreError(
            f"migrating would leave rows with dangling foreign keys (table, rowid, parent): "
            f"{[tuple(row[:3]) for row in broken[:5]]}"
        )


def ensure_schema(engine: Engine) -> str:
    """Bring the database to :data:`HEAD_REVISION` if it is not there yet; return the revision.

    The common case (already at head) costs one or two small queries and no Alembic import.
    """
    with engine.connect() as conn:
        found = current_revision(conn)
    if found == HEAD_REVISION:
        return found
    upgrade(engine)
    with engine.connect() as conn:
        found = current_revision(conn)
    if found != HEAD_REVISION:
        raise StoreError(
            f"database schema is at revision {found!r} after migrating; expected {HEAD_REVISION!r}"
        )
    return found


def check_schema(engine: Engine) -> None:
    """Raise StoreError unless the database is at :data:`HEAD_REVISION` (never migrates).

    The message tells the user what to do: ``legato db upgrade`` for a new or old database,
    the newer Legato for a database it migrated.
    """
    with engine.connect() as conn:
        found = current_revision(conn)
    if found != HEAD_REVISION:
        raise StoreError(schema_problem(found))


def schema_problem(found: str | None) -> str:
    """Why a database at revision ``found`` (not the head) cannot be used, and the fix.

    Imports Alembic for an old revision; meant for error paths only.
    """
    hint = "run `legato db upgrade` for this store (or open it with migrate=True)"
    if found is None:
        return f"the database has no Legato schema yet: {hint}"
    if found in known_revisions():
        return (
            f"the database schema is at revision {found!r}, behind this Legato's "
            f"{HEAD_REVISION!r}: {hint}"
        )
    return _unknown_revision(found)


def _unknown_revision(found: str) -> str:
    return (
        f"the database schema is at revision {found!r}, which this Legato (schema "
        f"{HEAD_REVISION!r}) does not know: a newer Legato migrated it; use that version "
        "(there are no downgrades)"
    )
