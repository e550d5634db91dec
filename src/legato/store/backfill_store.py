"""Backfills: their partition keys and progress; the state of each partition, as kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
    update,
)

from legato.domain.alert_records import FactKind
from legato.domain.backfill_keys import BackfillKeys
from legato.domain.records import (
    BackfillRecord,
    NotFound,
)
from legato.domain.states import (
    BackfillState,
    RunState,
    check_backfill_transition,
)
from legato.store import partition_status as status
from legato.store import rows
from legato.store.alert_store import write_fact
from legato.store.database import Part, of_pipelines
from legato.store.schema import (
    backfills,
    runs,
)

_r = runs.c


_PAUSED = select(backfills.c.id).where(backfills.c.state == BackfillState.PAUSED.value)


def _backfill(row: Sequence[Any]) -> BackfillRecord:
    return BackfillRecord(
        row[0],
        row[1],
        BackfillState(row[2]),
        BackfillKeys.from_json(rows.from_json(row[3])),
        row[4],
        row[5],
        row[6],
        dict(rows.from_json(row[7])),
        row[8],
        row[9],
        row[10],
    )


def _backfill_values(b: BackfillRecord) -> dict[str, Any]:
    return {
        "id": b.id,
        "pipeline": b.pipeline,
        "state": BackfillState(b.state).value,
        "keys": rows.to_json(b.keys.to_json()),
        "next_index": b.next_index,
        "max_concurrent": b.max_concurrent,
        "priority": b.priority,
        "params": rows.to_json(b.params),
        "created_at": b.created_at,
        "updated_at": b.updated_at,
        "message": b.message,
    }


class BackfillStore(Part):
    """Backfills."""

    def partition_states(
        self, pipeline: str, keys: Collection[str] | None = None
    ) -> Mapping[str, tuple[str, str]]:
        """(state, newest run id) of the partitions of ``pipeline`` that have a run: of
        ``keys`` (a page's, looked up one by one in the kept status), or of every one."""
        with self._engine.connect() as conn:
            if keys is None:
                return status.all_states(conn, pipeline)
            return status.states_of(conn, pipeline, keys)

    def partition_state_map(self, pipeline: str) -> dict[str, str]:
        """Partition -> state of every partition of ``pipeline`` that has a run."""
        with self._engine.connect() as conn:
            return status.state_map(conn, pipeline)

    def partitions_in_states(self, pipeline: str, states: Collection[str]) -> dict[str, str]:
        """Partition -> state of those of ``pipeline`` whose newest run is in one of
        ``states``."""
        with self._engine.connect() as conn:
            return status.keys_in_states(conn, pipeline, states)

    def partitions_between(
        self, pipeline: str, first: str, last: str, states: Collection[str] | None = None
    ) -> dict[str, tuple[str, str]]:
        """Partition -> (state, newest run id) of the partitions of ``pipeline`` with a run
        from ``first`` to ``last`` in text order (both included), of ``states`` if given."""
        with self._engine.connect() as conn:
            return status.between(conn, pipeline, first, last, states)

    def partitions_among(self, pipeline: str, ranges: Sequence[tuple[str, str]]) -> set[str]:
        """The partitions of ``pipeline`` with a run in any of ``ranges`` (first, last, both
        included) of text."""
        with self._engine.connect() as conn:
            return status.present_among(conn, pipeline, ranges)

    def partitions_present(
        self, pipeline: str, bounds: Sequence[tuple[str, str]]
    ) -> list[int]:
        """How many partitions of ``pipeline`` have a run in each range (first, last, both
        included) of text."""
        with self._engine.connect() as conn:
            return status.present_in(conn, pipeline, bounds)

    def partition_counts(self, pipeline: str) -> dict[str, int]:
        """How many partitions of ``pipeline`` have their newest run in each state."""
        with self._engine.connect() as conn:
            return status.counts_by_state(conn, pipeline)

    @rows.unwrap_bind_errors
    def create_backfill(self, backfill: BackfillRecord) -> BackfillRecord:
        """Record a new backfill."""
        with self._write.begin() as conn:
            conn.execute(insert(backfills).values(_backfill_values(backfill)))
        return backfill

    def get_backfill(
        self, backfill_id: str, *, pipelines: Collection[str] | None = None
    ) -> BackfillRecord:
        """The backfill with this id or unique id prefix; NotFound otherwise.

        With ``pipelines``, backfills of other pipelines are taken for absent.
        """
        c = backfills.c
        if not backfill_id:
            raise NotFound("no backfill id given")
        stmt = (
            of_pipelines(select(backfills), c.pipeline, pipelines)
            .where(
                c.id.startswith(backfill_id, autoescape=True),
                # SQLite's LIKE ignores case; ids are case-sensitive everywhere else.
                func.substr(c.id, 1, len(backfill_id)) == backfill_id,
            )
            .limit(2)
        )
        with self._engine.connect() as conn:
            exact = conn.execute(
                of_pipelines(select(backfills), c.pipeline, pipelines).where(c.id == backfill_id)
            ).first()
            found = [exact] if exact is not None else list(conn.execute(stmt))
        if len(found) != 1:
            how = "no" if not found else "more than one"
            raise NotFound(f"{how} backfill with id or id prefix {backfill_id!r}")
        return _backfill(found[0])

    def paused_backfill_ids(self) -> list[str]:
        """Ids of the paused backfills (their queued runs wait): one small statement, asked
        by each claim of queued runs."""
        with self._engine.connect() as conn:
            return list(conn.execute(_PAUSED).scalars())

    def list_backfills(
        self,
        *,
        pipeline: str | None = None,
        active: bool = False,
        limit: int = 50,
        pipelines: Collection[str] | None = None,
    ) -> list[BackfillRecord]:
        """Backfills, newest first; ``active`` keeps running and paused ones; ``pipelines``
        those of these pipelines (None: of any)."""
        c = backfills.c
        stmt = (
            of_pipelines(select(backfills), c.pipeline, pipelines)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )
        if pipeline is not None:
            stmt = stmt.where(c.pipeline == pipeline)
        if active:
            stmt = stmt.where(
                c.state.in_([BackfillState.RUNNING.value, BackfillState.PAUSED.value])
            )
        with self._engine.connect() as conn:
            return [_backfill(r) for r in conn.execute(stmt)]

    @rows.unwrap_bind_errors
    def update_backfill(
        self,
        backfill_id: str,
        now: datetime,
        *,
        state: BackfillState | None = None,
        next_index: int | None = None,
        message: str | None = None,
    ) -> BackfillRecord:
        """Change a backfill's state (checked against its transition table) or progress."""
        c = backfills.c
        with self._write.begin() as conn:
            # Locks the row on PostgreSQL: two callers racing (e.g. to complete and to cancel)
            # must not both pass the transition check against the same old state.
            found = conn.execute(
                select(backfills).where(c.id == backfill_id).with_for_update()
            ).first()
            if found is None:
                raise NotFound(f"no backfill with id {backfill_id!r}")
            old = _backfill(found)
            changes: dict[str, Any] = {"updated_at": now}
            if state is not None and state != old.state:
                check_backfill_transition(old.state, state)
                changes["state"] = state.value
            if next_index is not None:
                # Never backwards: another scheduler may have moved it further meanwhile.
                changes["next_index"] = max(next_index, old.next_index)
            if message is not None:
                changes["message"] = message
            conn.execute(update(backfills).where(c.id == backfill_id).values(changes))
            if changes.get("state") == BackfillState.COMPLETED.value:
                self._completed_fact(conn, old, now)
            return _backfill(conn.execute(select(backfills).where(c.id == backfill_id)).one())

    @staticmethod
    def _completed_fact(conn: Connection, backfill: BackfillRecord, now: datetime) -> None:
        # The alert outbox learns of the completion in the transaction that records it.
        states = select(_r.state, func.count()).where(_r.backfill_id == backfill.id)
        counts = {s: int(n) for s, n in conn.execute(states.group_by(_r.state))}
        failed = counts.get(RunState.FAILED.value, 0)
        total = sum(counts.values())
        kind = FactKind.BACKFILL_FAILED if failed else FactKind.BACKFILL_FINISHED
        message = f"{total} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        write_fact(conn, kind, backfill.pipeline, now, backfill_id=backfill.id, message=message)

    def backfill_run_states(self, backfill_id: str) -> dict[str, int]:
        """How many of the backfill's runs are in each run state."""
        stmt = (
            select(_r.state, func.count()).where(_r.backfill_id == backfill_id).group_by(_r.state)
        )
        with self._engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(stmt)}

    def backfill_key_runs(
        self, backfill_id: str, keys: Collection[str]
    ) -> dict[str, tuple[str, str]]:
        """(state, run id) of the newest run the backfill made for each of ``keys`` (a page's)
        that has one."""
        stmt = (
            select(_r.partition, _r.state, _r.id)
            .where(_r.partition.in_(sorted(keys)), _r.backfill_id == backfill_id)
            .order_by(_r.id)
        )
        with self._engine.connect() as conn:
            return {k: (s, i) for k, s, i in conn.execute(stmt)} if keys else {}
