"""What every part of the store shares: the database's engines, its backend, and the
connection a driver's steps are written on.

Each part (``runs``, ``claims``, ``browse``...) is a ``Part`` over one ``Database``; the
``Store`` composes them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from contextlib import suppress
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, false
from sqlalchemy.sql.elements import ColumnElement

from legato.store import db
from legato.store import statements as sql

S = TypeVar("S", bound=Select[Any])


def of_pipelines(stmt: S, column: ColumnElement[str], pipelines: Collection[str] | None) -> S:
    """``stmt`` kept to rows whose ``column`` names one of ``pipelines`` (None: any).

    The filter of every list a scoped actor reads (``legato.services.scope``): it is part of
    the query, so a page's ``LIMIT`` counts only the rows that actor may see.
    """
    if pipelines is None:
        return stmt
    names = sorted(set(pipelines))
    if not names:
        return stmt.where(false())
    if len(names) == 1:
        return stmt.where(column == names[0])
    return stmt.where(column.in_(names))


class Database:
    """One database: a read engine, a write engine (``BEGIN IMMEDIATE`` on SQLite), compiled
    statements of the hot path, and a connection kept per thread for driver steps."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.write = engine.execution_options(**db.WRITE)
        self.backend: db.Backend = db.backend_of(engine.url)
        self.prepared: sql.PreparedSet | None = None  # compiled on first apply()
        # apply() runs once per driver step: a connection kept per thread saves the pool's
        # check-out and return (events, resets) on every step.
        self._local = threading.local()
        self._kept: list[Connection] = []
        self._kept_lock = threading.Lock()

    def step_connection(self) -> Connection:
        """This thread's kept write connection (opened again once closed or invalidated)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.write.connect()
            self._local.conn = conn
            with self._kept_lock:
                self._kept.append(conn)
        return conn

    def close(self) -> None:
        """Close the kept and pooled connections (a later call would open new ones)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for conn in kept:
            with suppress(Exception):
                conn.close()
        self._local = threading.local()
        self.engine.dispose()


class Part:
    """A part of the store over a shared ``Database``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def _engine(self) -> Engine:
        return self._db.engine

    @property
    def _write(self) -> Engine:
        return self._db.write

    @property
    def _backend(self) -> db.Backend:
        return self._db.backend
