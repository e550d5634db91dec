"""Trigger state and events: cursors, paused flags and webhook tokens; the events each trigger saw.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from legato.domain.records import (
    NewTriggerEvent,
    NotFound,
    RunRecord,
    TriggerEventRecord,
    TriggerState,
)
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import insert_if_missing
from legato.store.schema import (
    events,
    runs,
    trigger_events,
    trigger_states,
)

_r = runs.c


def _trigger_state(row: Sequence[Any]) -> TriggerState:
    cursor = None if row[3] is None else rows.from_json(row[3])
    return TriggerState(row[0], row[1], row[2], cursor, bool(row[4]), row[5], row[6])




class TriggerStore(Part):
    """Trigger state and events."""

    def trigger_states(self) -> dict[tuple[str, str], TriggerState]:
        """Every trigger the store has seen, by (pipeline, trigger name)."""
        with self._engine.connect() as conn:
            found = conn.execute(select(trigger_states)).all()
        return {(r[0], r[1]): _trigger_state(r) for r in found}

    @rows.unwrap_bind_errors
    def ensure_trigger(
        self, pipeline: str, name: str, kind: str, now: datetime, *, token: str | None = None
    ) -> TriggerState:
        """The trigger's state, created (with ``token``) if the store has not seen it."""
        key = and_(trigger_states.c.pipeline == pipeline, trigger_states.c.name == name)
        with self._write.begin() as conn:
            found = conn.execute(select(trigger_states).where(key)).first()
            if found is None:
                new = {"pipeline": pipeline, "name": name, "kind": kind, "token": token}
                insert_if_missing(conn, trigger_states, {**new, "updated_at": now})
                found = conn.execute(select(trigger_states).where(key)).one()
            return _trigger_state(found)

    @rows.unwrap_bind_errors
    def set_trigger_state(
        self,
        pipeline: str,
        name: str,
        now: datetime,
        *,
        cursor: Any = None,
        paused: bool | None = None,
        token: str | None = None,
        expect_cursor: Any = None,
    ) -> TriggerState | None:
        """Move a trigger's cursor (any JSON value), pause it or set its token.

        With ``expect_cursor`` the cursor moves only from that value: None is returned,
        and nothing written, when another scheduler moved it meanwhile.
        NotFound unless :meth:`ensure_trigger` made it first.
        """
        changes: dict[str, Any] = {"updated_at": now}
        if cursor is not None:
            changes["cursor"] = rows.to_json(cursor)
        if paused is not None:
            changes["paused"] = paused
        if token is not None:
            changes["token"] = token
        key = and_(trigger_states.c.pipeline == pipeline, trigger_states.c.name == name)
        with self._write.begin() as conn:
            stmt = update(trigger_states).where(key)
            if expect_cursor is not None:
                stmt = stmt.where(trigger_states.c.cursor == rows.to_json(expect_cursor))
            if conn.execute(stmt.values(changes)).rowcount == 0:
                if (
                    expect_cursor is not None
                    and conn.execute(select(trigger_states.c.name).where(key)).first()
                ):
                    return None
                raise NotFound(f"pipeline {pipeline!r} has no trigger {name!r} in the store")
            return _trigger_state(conn.execute(select(trigger_states).where(key)).one())

    @rows.unwrap_bind_errors
    def record_trigger_event(self, event: NewTriggerEvent) -> bool:
        """Record an event that made no run (e.g. a failed one); False if its key was seen."""
        try:
            with self._write.begin() as conn:
                conn.execute(insert(trigger_events).values(event.values()))
        except IntegrityError:
            return False
        return True

    def seen_event_keys(self, pipeline: str, trigger: str, keys: Collection[str]) -> set[str]:
        """Which of ``keys`` the trigger has already recorded."""
        if not keys:
            return set()
        c = trigger_events.c
        stmt = select(c.event_key).where(
            c.pipeline == pipeline, c.trigger == trigger, c.event_key.in_(list(keys))
        )
        with self._engine.connect() as conn:
            return set(conn.execute(stmt).scalars())

    def trigger_events(
        self,
        *,
        pipeline: str | None = None,
        trigger: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[TriggerEventRecord]:
        """Recorded trigger events, newest first (only those of ``status`` when given)."""
        c = trigger_events.c
        stmt = select(trigger_events).order_by(c.id.desc()).limit(limit)
        if pipeline is not None:
            stmt = stmt.where(c.pipeline == pipeline)
        if trigger is not None:
            stmt = stmt.where(c.trigger == trigger)
        if status is not None:
            stmt = stmt.where(c.status == status)
        with self._engine.connect() as conn:
            return [TriggerEventRecord(*r) for r in conn.execute(stmt)]

    def last_event_id(self) -> int:
        """The id of the newest run event (0 when there is none)."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)

    def runs_finished_after(
        self,
        event_id: int,
        pipelines: Collection[str],
        *,
        state: str = "succeeded",
        limit: int = 100,
    ) -> list[tuple[int, RunRecord]]:
        """Runs of ``pipelines`` that reached ``state`` in an event after ``event_id``.

        Returns (event id, run) in event order: the event id is a trigger's cursor.
        """
        if not pipelines:
            return []
        e = events.c
        stmt = (
            select(e.id, runs)
            .join(runs, runs.c.id == e.run_id)
            .where(
                e.id > event_id,
                e.kind == "run_state",
                e.new_state == state,
                _r.pipeline.in_(list(pipelines)),
            )
            .order_by(e.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(r[0], rows.run_from_row(r[1:])) for r in conn.execute(stmt)]
