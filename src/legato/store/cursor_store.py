"""Incremental cursor windows: one row per pipeline, cursor name and scope (a partition or a
run), holding the ``(low, high]`` range that scope reads (``legato.domain.cursors``).

Windows of one cursor follow each other: a new one starts at the high of the newest one. Opening
a window locks the cursor (a PostgreSQL advisory lock; SQLite has one writer), so two runs
opening windows at once never read the same rows twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from legato.domain.cursors import CursorWindow, Window, decode_value, encode_value, later
from legato.store.database import Part
from legato.store.dialect import insert_if_missing, lock_names
from legato.store.schema import cursor_windows

_c = cursor_windows.c


def _record(row: Row[Any]) -> CursorWindow:
    return CursorWindow(
        pipeline=row.pipeline,
        name=row.name,
        scope=row.scope,
        window=Window(decode_value(row.low), decode_value(row.high)),
        run_id=row.run_id,
        created_at=row.created_at,
    )


def _find(conn: Connection, pipeline: str, name: str, scope: str) -> CursorWindow | None:
    found = conn.execute(
        select(cursor_windows).where(_c.pipeline == pipeline, _c.name == name, _c.scope == scope)
    ).first()
    return None if found is None else _record(found)


class CursorStore(Part):
    """The windows incremental extracts read, per pipeline, cursor and scope."""

    def get_window(self, pipeline: str, name: str, scope: str) -> CursorWindow | None:
        """The window recorded for ``scope``, or None."""
        with self._engine.connect() as conn:
            return _find(conn, pipeline, name, scope)

    def open_window(
        self, pipeline: str, name: str, scope: str, current: Any, run_id: str, now: datetime
    ) -> CursorWindow:
        """The window of ``scope``: the one recorded, else a new one recorded now, from the
        newest window's high to ``current`` (the source's max of the cursor column)."""
        encode_value(current)  # a bound that cannot be kept fails before anything is written
        key = f"cursor:{pipeline}:{name}"
        with self._write.begin() as conn:
            lock_names(conn, [key])
            found = _find(conn, pipeline, name, scope)
            if found is not None:  # opened since the caller looked: the recorded one stands
                return found
            newest = conn.execute(
                select(_c.high)
                .where(_c.pipeline == pipeline, _c.name == name)
                .order_by(_c.created_at.desc())
                .limit(1)
            ).first()
            low = None if newest is None else decode_value(newest.high)
            window = Window(low, later(low, current))
            insert_if_missing(
                conn,
                cursor_windows,
                {"pipeline": pipeline, "name": name, "scope": scope, "run_id": run_id,
                 "low": encode_value(window.low), "high": encode_value(window.high),
                 "created_at": now},
            )  # fmt: skip
            return CursorWindow(pipeline, name, scope, window, run_id, now)

    def list_windows(self, pipeline: str, name: str | None = None) -> Sequence[CursorWindow]:
        """The windows of ``pipeline`` (of its cursor ``name`` only, if given), oldest first."""
        stmt = select(cursor_windows).where(_c.pipeline == pipeline)
        if name is not None:
            stmt = stmt.where(_c.name == name)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(_c.created_at, _c.name, _c.scope)).all()
        return [_record(r) for r in rows]
