"""Store tables of automation: schedule and trigger state, trigger events, backfills, the run
queue and pools. Mixed into :class:`legato.store.store.Store`; the same rules hold (aware UTC
datetimes in and out, ``now`` passed in, no wall clock).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from legato.domain.records import (
    BackfillRecord,
    NewEvent,
    NewTriggerEvent,
    NotFound,
    RunRecord,
    ScheduleState,
    TriggerEventRecord,
    TriggerState,
)
from legato.domain.states import (
    BackfillState,
    RunState,
    TaskState,
    check_backfill_transition,
    check_run_transition,
)
from legato.store import rows
from legato.store import statements as sql
from legato.store.schema import (
    backfills,
    events,
    pool_claims,
    pools,
    runs,
    schedule_states,
    task_runs,
    trigger_events,
    trigger_states,
)

_r = runs.c
_QUEUED = RunState.QUEUED.value
_RUNNING = RunState.RUNNING.value


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A pool's size and the task runs holding its slots."""

    name: str
    slots: int
    holders: tuple[tuple[str, str], ...]  # (run_id, task_key)


def _backfill(row: Sequence[Any]) -> BackfillRecord:
    return BackfillRecord(
        row[0],
        row[1],
        BackfillState(row[2]),
        tuple(rows.from_json(row[3])),
        row[4],
        row[5],
        row[6],
        dict(rows.from_json(row[7])),
        row[8],
        row[9],
        row[10],
    )


class AutomationStore:
    """Schedules, triggers, backfills, the queue and pools (see the module docstring)."""

    _engine: Engine
    _write: Engine

    # -- schedules ---------------------------------------------------------------------------

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

    # -- triggers ----------------------------------------------------------------------------

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
        self, *, pipeline: str | None = None, trigger: str | None = None, limit: int = 50
    ) -> list[TriggerEventRecord]:
        """Recorded trigger events, newest first."""
        c = trigger_events.c
        stmt = select(trigger_events).order_by(c.id.desc()).limit(limit)
        if pipeline is not None:
            stmt = stmt.where(c.pipeline == pipeline)
        if trigger is not None:
            stmt = stmt.where(c.trigger == trigger)
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

    # -- the queue ---------------------------------------------------------------------------

    def queued_runs(
        self,
        *,
        limit: int | None = None,
        skip_pipelines: Collection[str] = (),
        skip_backfills: Collection[str] = (),
    ) -> list[RunRecord]:
        """Queued runs in the order they should start: priority, then queue position.

        ``skip_*`` leave out runs that cannot start now (a pipeline at its limit, a paused
        backfill), so that they do not hide the startable ones behind ``limit``.
        """
        stmt = (
            select(runs)
            .where(_r.state == _QUEUED)
            .order_by(_r.priority.desc(), _r.queue_position, _r.id)
            .limit(limit)
        )
        if skip_pipelines:
            stmt = stmt.where(_r.pipeline.not_in(list(skip_pipelines)))
        if skip_backfills:
            stmt = stmt.where(
                or_(_r.backfill_id.is_(None), _r.backfill_id.not_in(list(skip_backfills)))
            )
        with self._engine.connect() as conn:
            return [rows.run_from_row(r) for r in conn.execute(stmt)]

    def running_counts(self) -> dict[str, int]:
        """How many runs of each pipeline are running."""
        stmt = select(_r.pipeline, func.count()).where(_r.state == _RUNNING).group_by(_r.pipeline)
        with self._engine.connect() as conn:
            return {p: int(n) for p, n in conn.execute(stmt)}

    def move_in_queue(self, run_id: str, *, to: str) -> RunRecord:
        """Put a queued run at the "top" or "bottom" of the queue.

        The top takes the highest queued priority and a position before every run there, so
        the run starts next; the bottom takes the lowest priority and the last position.
        """
        if to not in ("top", "bottom"):
            raise ValueError(f"move a run to 'top' or 'bottom', not {to!r}")
        with self._write.begin() as conn:
            found = conn.execute(select(runs).where(_r.id == run_id)).first()
            if found is None:
                raise NotFound(f"no run with id {run_id!r}")
            if found.state != _QUEUED:
                raise ValueError(f"run {run_id} is {found.state}, not queued")
            others = select(_r.priority, _r.queue_position).where(
                _r.state == _QUEUED, _r.id != run_id
            )
            if to == "top":
                head = conn.execute(
                    others.order_by(_r.priority.desc(), _r.queue_position).limit(1)
                ).first()
                prio = max(found.priority, head.priority) if head else found.priority
                first = conn.execute(
                    select(func.min(_r.queue_position)).where(
                        _r.state == _QUEUED, _r.priority == prio, _r.id != run_id
                    )
                ).scalar()
                pos = (
                    found.queue_position if first is None else min(found.queue_position, first - 1)
                )
            else:
                tail = conn.execute(
                    others.order_by(_r.priority, _r.queue_position.desc()).limit(1)
                ).first()
                prio = min(found.priority, tail.priority) if tail else found.priority
                last = conn.execute(
                    select(func.max(_r.queue_position)).where(
                        _r.state == _QUEUED, _r.priority == prio, _r.id != run_id
                    )
                ).scalar()
                pos = found.queue_position if last is None else max(found.queue_position, last + 1)
            conn.execute(
                update(runs).where(_r.id == run_id).values(priority=prio, queue_position=pos)
            )
            return rows.run_from_row(conn.execute(select(runs).where(_r.id == run_id)).one())

    # -- settling a run no driver can load ------------------------------------------------

    @rows.unwrap_bind_errors
    def cancel_without_driver(
        self, run_id: str, owner: str, now: datetime, reason: str
    ) -> RunRecord:
        """Mark a run and its unfinished task runs canceled, for a run whose code is gone.

        ``owner`` must hold the run's lease (which is given back). Appends the state events.
        """
        t = task_runs.c
        final = [s.value for s in TaskState if s.finished]
        with self._write.begin() as conn:
            found = conn.execute(
                select(runs).where(_r.id == run_id, _r.lease_owner == owner)
            ).first()
            if found is None:
                raise NotFound(f"run {run_id} is not leased by {owner}")
            run = rows.run_from_row(found)
            check_run_transition(run.state, RunState.CANCELED)
            open_rows = conn.execute(
                select(t.task_key, t.state).where(t.run_id == run_id, t.state.not_in(final))
            ).all()
            conn.execute(
                update(task_runs)
                .where(t.run_id == run_id, t.state.not_in(final))
                .values(state=TaskState.CANCELED.value, finished_at=now, error=reason)
            )
            new = [
                NewEvent(run_id, key, "task_state", state, TaskState.CANCELED, now, reason)
                for key, state in open_rows
            ]
            new.append(
                NewEvent(run_id, None, "run_state", run.state, RunState.CANCELED, now, reason)
            )
            conn.execute(insert(events), [rows.event_values(e) for e in new])
            conn.execute(
                update(runs)
                .where(_r.id == run_id)
                .values(
                    state=RunState.CANCELED.value,
                    finished_at=now,
                    error=reason,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            conn.execute(delete(pool_claims).where(pool_claims.c.run_id == run_id))
            return rows.run_from_row(conn.execute(select(runs).where(_r.id == run_id)).one())

    # -- partitions --------------------------------------------------------------------------

    def partition_runs(self, pipeline: str) -> dict[str, RunRecord]:
        """The newest run of each partition of ``pipeline``."""
        newest = (
            select(func.max(_r.id).label("id"))
            .where(_r.pipeline == pipeline, _r.partition.is_not(None))
            .group_by(_r.partition)
            .subquery()
        )
        stmt = select(runs).join(newest, newest.c.id == _r.id)
        with self._engine.connect() as conn:
            found = [rows.run_from_row(r) for r in conn.execute(stmt)]
        return {r.partition: r for r in found if r.partition is not None}

    # -- backfills ---------------------------------------------------------------------------

    @rows.unwrap_bind_errors
    def create_backfill(self, backfill: BackfillRecord) -> BackfillRecord:
        """Record a new backfill."""
        with self._write.begin() as conn:
            conn.execute(insert(backfills).values(_backfill_values(backfill)))
        return backfill

    def get_backfill(self, backfill_id: str) -> BackfillRecord:
        """The backfill with this id or unique id prefix; NotFound otherwise."""
        c = backfills.c
        if not backfill_id:
            raise NotFound("no backfill id given")
        stmt = (
            select(backfills)
            .where(
                c.id.startswith(backfill_id, autoescape=True),
                # SQLite's LIKE ignores case; ids are case-sensitive everywhere else.
                func.substr(c.id, 1, len(backfill_id)) == backfill_id,
            )
            .limit(2)
        )
        with self._engine.connect() as conn:
            exact = conn.execute(select(backfills).where(c.id == backfill_id)).first()
            found = [exact] if exact is not None else list(conn.execute(stmt))
        if len(found) != 1:
            how = "no" if not found else "more than one"
            raise NotFound(f"{how} backfill with id or id prefix {backfill_id!r}")
        return _backfill(found[0])

    def list_backfills(
        self, *, pipeline: str | None = None, active: bool = False, limit: int = 50
    ) -> list[BackfillRecord]:
        """Backfills, newest first; ``active`` keeps running and paused ones."""
        c = backfills.c
        stmt = select(backfills).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
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
            return _backfill(conn.execute(select(backfills).where(c.id == backfill_id)).one())

    def backfill_run_states(self, backfill_id: str) -> dict[str, int]:
        """How many of the backfill's runs are in each run state."""
        stmt = (
            select(_r.state, func.count()).where(_r.backfill_id == backfill_id).group_by(_r.state)
        )
        with self._engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(stmt)}

    # -- pools -------------------------------------------------------------------------------

    def sync_pools(self, sizes: Mapping[str, int]) -> None:
        """Make the pools table say exactly ``sizes`` (claims of removed pools are dropped)."""
        with self._engine.connect() as conn:
            seen = {n: s for n, s in conn.execute(select(pools.c.name, pools.c.slots))}
        if seen == dict(sizes):
            return  # the usual case: no write, so no lock
        with self._write.begin() as conn:
            have = {n: s for n, s in conn.execute(select(pools.c.name, pools.c.slots))}
            for name in set(have) - set(sizes):
                conn.execute(delete(pools).where(pools.c.name == name))
                conn.execute(delete(pool_claims).where(pool_claims.c.pool == name))
            for name, slots in sizes.items():
                if name not in have:
                    insert_if_missing(conn, pools, {"name": name, "slots": slots})
                elif have[name] != slots:
                    conn.execute(update(pools).where(pools.c.name == name).values(slots=slots))

    @rows.unwrap_bind_errors
    def claim_pool_slot(self, pool: str, run_id: str, task_key: str, now: datetime) -> bool:
        """Take a slot of ``pool`` for a task run; False when every slot is held.

        A claim counts while its run's lease is live: slots held by a driver that died free
        up when its lease runs out. Claiming twice for the same task run is a no-op (True).
        """
        pc = pool_claims.c
        with self._write.begin() as conn:
            # Locks the pool's row on PostgreSQL, so counting and claiming cannot interleave
            # with another claimer; SQLite's single writer gives the same.
            size = conn.execute(
                select(pools.c.slots).where(pools.c.name == pool).with_for_update()
            ).scalar()
            if size is None:
                raise NotFound(f"no pool named {pool!r}")
            mine = conn.execute(
                select(pc.pool).where(pc.run_id == run_id, pc.task_key == task_key)
            ).first()
            if mine is not None:
                return True
            # Judged by the lease clock (PostgreSQL's own on that backend), like the leases.
            expired = or_(_r.lease_expires_at.is_(None), _r.lease_expires_at < sql.lease_now())
            holders = conn.execute(
                select(pc.run_id, pc.task_key, expired)
                .join(runs, _r.id == pc.run_id, isouter=True)
                .where(pc.pool == pool),
                {"now": now},
            ).all()
            stale = [(h[0], h[1]) for h in holders if h[2]]
            for rid, key in stale:
                conn.execute(delete(pool_claims).where(pc.run_id == rid, pc.task_key == key))
            if len(holders) - len(stale) >= size:
                return False
            conn.execute(
                insert(pool_claims).values(
                    run_id=run_id, task_key=task_key, pool=pool, claimed_at=now
                )
            )
            return True

    def release_pool_slot(self, run_id: str, task_key: str | None = None) -> None:
        """Give back the slot a task run holds (every slot of the run without ``task_key``)."""
        pc = pool_claims.c
        stmt = delete(pool_claims).where(pc.run_id == run_id)
        if task_key is not None:
            stmt = stmt.where(pc.task_key == task_key)
        with self._write.begin() as conn:
            conn.execute(stmt)

    def pool_usage(self) -> list[PoolUsage]:
        """Each pool with the task runs holding its slots."""
        pc = pool_claims.c
        with self._engine.connect() as conn:
            sizes = list(conn.execute(select(pools.c.name, pools.c.slots).order_by(pools.c.name)))
            held = list(
                conn.execute(select(pc.pool, pc.run_id, pc.task_key).order_by(pc.claimed_at))
            )
        return [
            PoolUsage(name, slots, tuple((r, k) for p, r, k in held if p == name))
            for name, slots in sizes
        ]


def _trigger_state(row: Sequence[Any]) -> TriggerState:
    cursor = None if row[3] is None else rows.from_json(row[3])
    return TriggerState(row[0], row[1], row[2], cursor, bool(row[4]), row[5], row[6])


def _backfill_values(b: BackfillRecord) -> dict[str, Any]:
    return {
        "id": b.id,
        "pipeline": b.pipeline,
        "state": BackfillState(b.state).value,
        "keys": rows.to_json(list(b.keys)),
        "next_index": b.next_index,
        "max_concurrent": b.max_concurrent,
        "priority": b.priority,
        "params": rows.to_json(b.params),
        "created_at": b.created_at,
        "updated_at": b.updated_at,
        "message": b.message,
    }


def insert_if_missing(conn: Connection, table: Any, values: Mapping[str, Any]) -> bool:
    """Insert a row unless one with its key exists (a concurrent creator won); True if
    this call inserted it. Unlike a plain INSERT, losing the race is no error."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(dict(values)).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(dict(values)).on_conflict_do_nothing()
    done = conn.execute(stmt)
    return bool(done.rowcount)


def insert_trigger_events(conn: Connection, items: Sequence[NewTriggerEvent]) -> None:
    """Insert trigger events inside the caller's transaction."""
    if items:
        conn.execute(insert(trigger_events), [i.values() for i in items])
