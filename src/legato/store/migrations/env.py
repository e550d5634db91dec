"""Alembic environment for the store's migrations.

Normally run through ``legato.store.migrate.upgrade()``, which hands over a connection that is
already inside a write transaction (``config.attributes["connection"]``); Alembic then runs the
migrations in that transaction. Given only a URL (``sqlalchemy.url``), it opens its own engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from legato.store.db import WRITE, create_engine
from legato.store.schema import declare_partial_indexes, metadata

declare_partial_indexes()

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection or sqlalchemy.url given to the migrations")
    engine = create_engine(url)
    try:
        with engine.execution_options(**WRITE).connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
