"""The ``sql`` kind: a SQLAlchemy engine for any installed dialect.

    [resources.shop_db]
    kind = "sql"
    url = "postgresql+psycopg://app:${secret:shop_password}@db.internal/shop"
    pool_size = 5

A relative SQLite or DuckDB file (``sqlite:///data/shop.db``, ``duckdb:///warehouse.duckdb``)
lies in the project's folder, wherever the worker was started from; its folder is made when
the engine is.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from legato.resources.kind import ResourceError, ResourceKind

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = ["SqlResource"]

#: Backends whose database part of the URL is a file path.
_FILE_BACKENDS = frozenset({"sqlite", "duckdb"})

#: Engine keyword arguments taken from the settings as they are, with their types.
_ENGINE_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "pool_size": int,
    "max_overflow": int,
    "pool_timeout": (int, float),
    "pool_recycle": (int, float),
    "pool_pre_ping": bool,
    "echo": bool,
    "isolation_level": str,
    "connect_args": dict,
}


class SqlResource(ResourceKind):
    """``url`` (a SQLAlchemy URL) and the engine's pool settings; tasks get an ``Engine``.

    ``pool_pre_ping`` is on unless turned off: an engine lives as long as its worker, long
    enough for a server to drop its idle connections.
    """

    kind = "sql"
    settings_keys: ClassVar[frozenset[str]] = frozenset({"url", *_ENGINE_OPTIONS})

    def validate(self) -> None:
        self.require("url")
        for key, kind in _ENGINE_OPTIONS.items():
            self.option(key, kind, None)

    def url(self) -> URL:
        """The engine's URL, a relative SQLite or DuckDB file made absolute against the
        project's folder."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.settings["url"])
        except ArgumentError as exc:
            raise ResourceError(f"resource {self.name!r} (sql): bad url: {exc}") from None
        database = url.database
        if (
            url.get_backend_name() in _FILE_BACKENDS
            and database
            and database != ":memory:"
            and not database.startswith("file:")  # a SQLite URI filename is left as written
        ):
            url = url.set(database=self.project_path(database))
        return url

    def open(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError
        from sqlalchemy.pool import NullPool

        url = self.url()
        if (
            url.get_backend_name() in _FILE_BACKENDS
            and url.database
            and os.path.isabs(url.database)
        ):
            os.makedirs(os.path.dirname(url.database), exist_ok=True)
        options: dict[str, Any] = {"pool_pre_ping": True}
        options.update({k: self.settings[k] for k in _ENGINE_OPTIONS if k in self.settings})
        if url.get_backend_name() == "duckdb" and not _pool_settings(options):
            # A DuckDB file admits one writing process: holding it open in an idle pool would
            # shut out every other worker, so each connection opens and closes the file.
            options["poolclass"] = NullPool
        try:
            return create_engine(url, **options)
        except NoSuchModuleError as exc:
            raise ResourceError(
                f"resource {self.name!r} (sql): no SQLAlchemy dialect for "
                f"{url.drivername!r} is installed ({exc})"
            ) from None
        except (ArgumentError, TypeError, ImportError) as exc:
            raise ResourceError(
                f"resource {self.name!r} (sql): cannot make an engine: {exc}"
            ) from None

    def check(self, client: Engine) -> str:
        from sqlalchemy import text

        with client.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
            version = _server_version(client, conn)
        where = client.url.render_as_string(hide_password=True)
        return f"SELECT 1 answered by {version} at {where}"

    def close(self, client: Engine) -> None:
        client.dispose()


def _pool_settings(options: dict[str, Any]) -> bool:
    return any(k in options for k in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"))


def _server_version(engine: Engine, conn: Any) -> str:
    name = engine.dialect.name
    if name == "duckdb":
        from sqlalchemy import text

        return f"DuckDB {conn.execute(text('SELECT version()')).scalar_one()}"
    info = engine.dialect.server_version_info
    label = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL"}.get(name, name)
    if not info:
        return label
    return f"{label} {'.'.join(str(part) for part in info)}"
