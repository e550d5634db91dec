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

import errno
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from legato.security.files import open_private

if TYPE_CHECKING:
    from legato.domain.records import StoreFull

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
    engine = _sqlite_engine(parsed) if parsed.drivername == "sqlite" else _postgres_engine(parsed)
    _time_statements(engine)
    return engine


#: The first word of a statement, as the ``operation`` label of its duration.
_OPERATIONS = frozenset({"select", "insert", "update", "delete"})


def _time_statements(engine: Engine) -> None:
    """Time each statement run through ``engine`` into the store latency histogram."""
    from time import perf_counter

    from legato.observability.metrics import STORE_SECONDS

    observe = {op: STORE_SECONDS.labels(op).observe for op in (*_OPERATIONS, "other")}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info.setdefault("legato_began", []).append(perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        began = conn.info.get("legato_began")
        if not began:
            return
        word = statement.lstrip()[:6].lower()
        observe[word if word in _OPERATIONS else "other"](perf_counter() - began.pop())

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        # A statement that raised never reaches after_cursor_execute: drop its start.
        conn = context.connection
        began = conn.info.get("legato_began") if conn is not None else None
        if began:
            began.pop()


def _create_private(path: Path) -> None:
    # The file holds every run's params and the webhooks' tokens: made 0600 (its folder 0700
    # when made here) before SQLite opens it; SQLite gives its -wal and -shm the same mode.
    if not path.exists():
        os.close(open_private(path, os.O_RDWR | os.O_CLOEXEC))


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


_CACHE_KIB = 32 * 1024


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
            _create_private(path)
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
            # Pages kept in memory, up to 32 MiB (SQLite's default is 2 MiB): a step of a
            # big map touches the b-trees of task_runs, attempts and events far apart, and
            # re-reading pages from the OS costs more than the rows' own writes.
            cursor.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
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
    the caller should wait and try again, keeping what it has not written.

    A full disk is not an outage: it does not pass by waiting, someone must free space
    (``is_disk_full``)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from legato.domain.records import StoreError

    if is_disk_full(exc):
        return False
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )
    if isinstance(exc, StoreError):
        cause = exc.__cause__
        return cause is not None and is_unavailable(cause)
    return False


#: PostgreSQL's SQLSTATE for "disk full" (class 53, insufficient resources).
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException, path: Path | None = None) -> bool:
    """Whether ``exc`` says the disk under the database is full: SQLite's SQLITE_FULL,
    PostgreSQL's disk_full, an ENOSPC. With ``path`` (the SQLite file), an I/O error while
    its volume has no free space left counts too: SQLite reports a full disk that way when
    it cannot create its ``-shm`` or ``-wal`` file."""
    from sqlalchemy.exc import DBAPIError

    from legato.domain.records import StoreError, StoreFull

    if isinstance(exc, StoreFull):
        return True
    if isinstance(exc, StoreError):
        return exc.__cause__ is not None and is_disk_full(exc.__cause__, path)
    orig: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    if isinstance(orig, OSError) and orig.errno == errno.ENOSPC:
        return True
    if getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        return True
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "database or disk is full" in str(orig):
            return True
        if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR and path is not None:
            return free_bytes(path) == 0
    return False


def free_bytes(path: Path) -> int | None:
    """Bytes free (for unprivileged users) on the volume holding ``path``; None if unknown."""
    for folder in (path, *path.parents):
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def mount_point(path: Path) -> Path:
    """The mount point of the volume holding ``path`` (which may not exist yet)."""
    here = path.absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def disk_full_message(url: str) -> str:
    """One line for a full disk under the store at ``url``: what is full, where, what to free."""
    file = sqlite_file(url)
    if file is None:
        return (
            f"the disk of the PostgreSQL server of the store is full ({shown_url(url)}): "
            "free space on the database server's data volume"
        )
    free = free_bytes(file)
    left = "" if free is None else f", {free:,} bytes free"
    return (
        f"the disk holding the store is full: {file} is on the volume mounted at "
        f"{mount_point(file)}{left}. Free space on that volume (large files, old logs or "
        "results)"
    )


def full_error(exc: BaseException, url: str, then: str = "") -> StoreFull | None:
    """A StoreFull saying what to free (and ``then`` what to do after) when ``exc`` says the
    disk under the store at ``url`` is full; None otherwise (a StoreFull already says it)."""
    from sqlalchemy.exc import DBAPIError

    from legato.domain.records import StoreError, StoreFull

    if isinstance(exc, StoreFull) or not isinstance(exc, DBAPIError | OSError | StoreError):
        return None  # the cheap test first: this runs for every error a service raises
    try:
        file = sqlite_file(url)
    except Exception:  # an unusable URL: its own error is reported elsewhere
        return None
    if not is_disk_full(exc, file):
        return None
    return StoreFull(disk_full_message(url) + then)


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
