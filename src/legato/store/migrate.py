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
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from legato.store.db import WRITE
from legato.store.records import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest revision in ``migrations/versions``; databases at it open without Alembic.
HEAD_REVISION = "0004"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"

# Key of the PostgreSQL advisory lock that serialises concurrent first-time migrations.
_PG_MIGRATION_LOCK = 0x6C6567_61746F  # "legato"


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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one write transaction.

    Safe to call from several processes at once: the transaction takes the write lock (SQLite
    ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) before Alembic reads the current version,
    so a latecomer finds the work done.
    """
    from alembic import command
    from alembic.util import CommandError

    with engine.execution_options(**WRITE).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        found = current_revision(conn)
        try:
            command.upgrade(alembic_config(connection=conn), revision)
        except CommandError as exc:
            raise StoreError(
                f"cannot migrate the database from revision {found!r} to {revision!r}: {exc}. "
                "A database written by a newer Legato needs that version."
            ) from exc


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
    """Raise StoreError unless the database is at :data:`HEAD_REVISION` (never migrates)."""
    with engine.connect() as conn:
        found = current_revision(conn)
    if found != HEAD_REVISION:
        raise StoreError(
            f"database schema is at revision {found!r}, not {HEAD_REVISION!r}; "
            "open it with migrate=True to migrate it"
        )
