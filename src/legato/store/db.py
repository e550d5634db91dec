"""Engine creation for the store's two backends, SQLite and PostgreSQL (psycopg 3).

SQLite
    ``sqlite:///relative/or/absolute/path.db`` (``~`` is expanded, the parent folder is created)
    or ``sqlite:///:memory:`` for throw-away use in one process. Every connection gets
    ``journal_mode=WAL``, ``synchronous=NORMAL`` (``LEGATO_SQLITE_SYNCHRONOUS=FULL`` for
    power-loss durability of the last commits), ``foreign_keys=ON`` and ``busy_timeout=10000``.

    The ``sqlite3`` module's own transaction handling is switched off and BEGIN is emitted
    from a ``begin`` event instead (the SQLAlchemy pysqlite recipe). That lets connections
    carrying the execution option :data:`WRITE` start with ``BEGIN IMMEDIATE``: a writer takes
    the write lock up front, waiting for it under ``busy_timeout``, instead of reading first
    and failing with SQLITE_BUSY when two processes both try to upgrade a read lock.
    Reads use a plain (deferred) ``BEGIN`` and never block writers under WAL.

PostgreSQL
    ``postgresql://`` (mapped to psycopg 3), ``postgres://`` or ``postgresql+psycopg://``.
    Query parameters go to psycopg, e.g. ``?options=-csearch_path%3Dmyschema`` to use a schema.

Fork safety
    An engine's pooled connections must never be used by two processes. A child process that
    inherited an engine must call ``engine.dispose(close=False)`` (``Store.after_fork()``) before
    its first query: that drops the inherited pool without closing the parent's connections, and
    the child opens its own. The simplest alternative is to open the store after forking.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

Backend = Literal["sqlite", "postgresql"]

#: Execution options marking a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE: dict[str, Any] = {"legato_write": True}

SQLITE_SYNCHRONOUS_ENV = "LEGATO_SQLITE_SYNCHRONOUS"
_SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and map it to the driver the store uses; raise ValueError if unsupported."""
    parsed = make_url(url) if isinstance(url, str) else url
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if driver in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite")
    raise ValueError(
        f"unsupported database URL scheme {driver!r}: use sqlite:///path/to/file.db "
        "or postgresql://user@host/dbname"
    )


def backend_of(url: str | URL) -> Backend:
    """``"sqlite"`` or ``"postgresql"`` for a URL the store accepts."""
    return "sqlite" if normalize_url(url).drivername == "sqlite" else "postgresql"


def create_engine(url: str | URL) -> Engine:
    """An engine for ``url`` configured as described in this module's docstring."""
    parsed = normalize_url(url)
    if parsed.drivername == "sqlite":
        return _sqlite_engine(parsed)
    return _postgres_engine(parsed)


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_synchronous() -> str:
    level = os.environ.get(SQLITE_SYNCHRONOUS_ENV, "NORMAL").strip().upper()
    if level not in _SYNCHRONOUS_LEVELS:
        raise ValueError(
            f"{SQLITE_SYNCHRONOUS_ENV}={level!r} is not one of {', '.join(_SYNCHRONOUS_LEVELS)}"
        )
    return level


def _sqlite_engine(url: URL) -> Engine:
    synchronous = _sqlite_synchronous()  # read once, so a typo fails at open, not mid-run
    kwargs: dict[str, Any] = {}
    if _is_memory(url):
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        uri_mode = str(url.query.get("uri", "")).lower() in ("true", "1")
        if not uri_mode:
            # Absolute, so Store.url still names the same file after a chdir or in a worker.
            path = Path(url.database or "").expanduser().absolute()
            path.parent.mkdir(parents=True, exist_ok=True)
            url = url.set(database=str(path))
        # sqlite3's own busy wait, in seconds; kept equal to the pragma below.
        kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_MS / 1000}
    engine = sa_create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop sqlite3 from issuing BEGIN itself (it does so lazily and only before DML);
        # _on_begin below emits it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            _ensure_wal(cursor)
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: exec_driver_sql would work too but costs ~30 us more, and
        # the driver's step loop begins a transaction every step.
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get("legato_write") else "BEGIN"
        conn.connection.driver_connection.execute(begin)

    return engine


def _ensure_wal(cursor: Any) -> None:
    """Switch the database file to WAL (a persistent setting) unless it is in WAL already.

    The switch needs an exclusive lock and SQLite may refuse it with "database is locked"
    without waiting in the busy handler - seen when several processes open a brand-new file at
    once - so it is retried here for up to the busy timeout.
    """
    mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode in ("wal", "memory"):
        return
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01 + random.random() * 0.04)  # jitter: don't retry in lock-step


def _postgres_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if "application_name" not in url.query:
        connect_args["application_name"] = "legato"
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    # A small pool: a driver process holds at most a connection or two. pre_ping costs one
    # round trip per checkout but survives server restarts in long-lived processes.
    return sa_create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached right now (a server restarting,
    a dropped connection, a lock held too long) rather than that a statement is wrong:
    the caller should wait and try again, keeping what it has not written."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from legato.domain.records import StoreError

    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )
    if isinstance(exc, StoreError):
        cause = exc.__cause__
        return cause is not None and is_unavailable(cause)
    return False


def shown_url(url: str) -> str:
    """``url`` as printed: the password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # the error about it comes later; never echo it raw
        return "<unparsable URL>"


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a file-backed SQLite URL, absolute; None for PostgreSQL, ``:memory:`` and
    URI-mode URLs (whose path is not a plain file name)."""
    parsed = normalize_url(url)
    if parsed.drivername != "sqlite" or _is_memory(parsed):
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        return None
    return Path(parsed.database or "").expanduser().absolute()


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL if it does not exist yet (opening it would create it)."""
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = normalize_url(url)
    except (ArgumentError, ValueError):  # reported when the URL is opened
        return None
    if parsed.drivername != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        return None
    path = Path(parsed.database or "").expanduser()
    return None if path.exists() else path
