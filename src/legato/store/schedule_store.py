"""Schedule state: each schedule's cursor (the last tick it made runs for) and paused flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    select,
    update,
)

from legato.domain.records import (
    ScheduleState,
)
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import insert_if_missing
from legato.store.schema import (
    schedule_states,
)


class ScheduleStore(Part):
    """Schedule state."""

    def schedule_states(self) -> dict[tuple[str, str], ScheduleState]:
        """Every schedule the store has seen, by (pipeline, schedule name)."""
        with self._engine.connect() as conn:
            found = conn.execute(select(schedule_states)).all()
        return {(r[0], r[1]): ScheduleState(*r) for r in found}

    @rows.unwrap_bind_errors
    def set_schedule_state(
        self,
        pipeline: str,
        name: str,
        now: datetime,
        *,
        cursor: datetime | None = None,
        paused: bool | None = None,
        expect_cursor: datetime | None = None,
    ) -> ScheduleState | None:
        """Move a schedule's cursor and/or pause it; creates its row on first use.

        With ``expect_cursor`` the cursor moves only from that value: when another scheduler
        moved it meanwhile nothing is written and None is returned, so a cursor advances
        once however many schedulers tick.
        """
        changes: dict[str, Any] = {"updated_at": now}
        if cursor is not None:
            changes["cursor"] = cursor
        if paused is not None:
            changes["paused"] = paused
        c = schedule_states.c
        key = and_(c.pipeline == pipeline, c.name == name)
        with self._write.begin() as conn:
            if expect_cursor is not None:
                moved = update(schedule_states).where(key, c.cursor == expect_cursor)
                if conn.execute(moved.values(changes)).rowcount == 0:
                    return None
            elif conn.execute(update(schedule_states).where(key).values(changes)).rowcount == 0:
                new = {"pipeline": pipeline, "name": name, "cursor": cursor}
                if not insert_if_missing(
                    conn, schedule_states, {**new, "paused": bool(paused), "updated_at": now}
                ):  # another scheduler made it just now: apply the change to its row
                    conn.execute(update(schedule_states).where(key).values(changes))
            return ScheduleState(*conn.execute(select(schedule_states).where(key)).one())
