"""Runs, task runs, attempts, events, snapshots and code locations: the run's life in the store,
with the driver's one-transaction step (``apply``, in ``step_writer.py``), the code it runs
(``code_records.py``) and leases taken and given back one run at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from legato.domain.records import (
    Ambiguous,
    AttemptRecord,
    DuplicateRun,
    EventRecord,
    NewEvent,
    NewTriggerEvent,
    NotFound,
    RunRecord,
    StoreError,
    TaskRunRecord,
)
from legato.domain.states import (
    RunState,
    TaskState,
    check_run_transition,
)
from legato.observability import metrics
from legato.store import rows
from legato.store import statements as sql
from legato.store.alert_store import write_run_facts
from legato.store.code_records import CodeRecords
from legato.store.database import of_pipelines
from legato.store.partition_status import write_new_run, write_state
from legato.store.schema import (
    attempts,
    events,
    pool_claims,
    runs,
    task_runs,
    trigger_events,
)
from legato.store.step_writer import StepWriter

_r = runs.c
_c = runs.c


def insert_trigger_events(conn: Connection, items: Sequence[NewTriggerEvent]) -> None:
    """Insert trigger events inside the caller's transaction."""
    if items:
        conn.execute(insert(trigger_events), [i.values() for i in items])


class RunStore(StepWriter, CodeRecords):
    """Runs, task runs, attempts, events, snapshots and code locations (``CodeRecords``)."""

    @rows.unwrap_bind_errors
    def create_run(
        self,
        run: RunRecord,
        task_runs: Sequence[TaskRunRecord] = (),
        events: Sequence[NewEvent] = (),
        trigger_events: Sequence[NewTriggerEvent] = (),
    ) -> RunRecord:
        """Insert a run with its task runs and first events in one transaction.

        ``trigger_events`` are the events that made the run, recorded with it so that an event
        redelivered later is known as seen. Raises DuplicateRun (writing nothing) when
        ``run.run_key`` is already taken.
        """
        rows.check_run_ids(run.id, task_runs, "task run")
        rows.check_run_ids(run.id, events, "event")
        try:
            with self._write.begin() as conn:
                if run.run_key is not None:
                    existing = self._run_by_key(conn, run.run_key)
                    if existing is not None:
                        raise DuplicateRun(existing)
                conn.execute(sql.INSERT_RUN, rows.run_values(run))
                write_new_run(conn, run)
                # Straight on the cursor: a run of 10,000 tasks spent 0.2 s in SQLAlchemy's
                # per-row parameter handling here.
                fast = self._fast()
                if task_runs:
                    fast.insert_task_run.execute(conn, [rows.task_run_values(t) for t in task_runs])
                if events:
                    fast.insert_event.execute(conn, [rows.event_values(e) for e in events])
                insert_trigger_events(conn, trigger_events)
        except IntegrityError as exc:
            # Lost a race with another creator of the same key (PostgreSQL), or a reused id.
            if run.run_key is not None:
                with self._engine.connect() as conn:
                    existing = self._run_by_key(conn, run.run_key)
                if existing is not None:
                    raise DuplicateRun(existing) from None
            raise StoreError(f"cannot create run {run.id}: {exc.orig}") from exc
        metrics.RUNS_CREATED.labels(run.pipeline, run.state.value).inc()
        return run

    @staticmethod
    def _run_by_key(conn: Connection, run_key: str) -> RunRecord | None:
        found = conn.execute(select(runs).where(_c.run_key == run_key)).first()
        return None if found is None else rows.run_from_row(found)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with exactly this id; NotFound otherwise."""
        with self._engine.connect() as conn:
            found = conn.execute(sql.SELECT_RUN, {"k_id": run_id}).first()
        if found is None:
            raise NotFound(f"no run with id {run_id!r}")
        return rows.run_from_row(found)

    def find_run(self, prefix: str, *, pipelines: Collection[str] | None = None) -> RunRecord:
        """The run whose id is ``prefix``, else the only run whose id starts with it.

        Raises NotFound, or Ambiguous listing the candidates. With ``pipelines``, runs of
        other pipelines are taken for absent (neither found nor counted as candidates).
        """
        prefix = prefix.strip()
        if not prefix:
            raise NotFound("no run id given")
        shown = 10
        with self._engine.connect() as conn:
            exact = conn.execute(sql.SELECT_RUN, {"k_id": prefix}).first()
            if exact is not None and (pipelines is None or exact.pipeline in pipelines):
                return rows.run_from_row(exact)
            stmt = (
                of_pipelines(select(runs), _c.pipeline, pipelines)
                .where(_c.id.startswith(prefix, autoescape=True))
                .order_by(_c.id.desc())
                .limit(shown + 1)
            )
            # SQLite's LIKE ignores case; ids are case-sensitive everywhere else.
            found = [r for r in conn.execute(stmt) if r.id.startswith(prefix)]
        if not found:
            raise NotFound(f"no run with id or id prefix {prefix!r}")
        if len(found) == 1:
            return rows.run_from_row(found[0])
        lines = [
            f"  {r.id}  {r.pipeline}  {r.state}  {r.created_at:%Y-%m-%d %H:%M:%S}"
            for r in found[:shown]
        ]
        more = "\n  ... and more" if len(found) > shown else ""
        raise Ambiguous(
            f"run id prefix {prefix!r} matches several runs; give more characters:\n"
            + "\n".join(lines)
            + more
        )

    def runs_in_state(self, state: RunState | str, *, limit: int | None = None) -> list[RunRecord]:
        """Runs in ``state``, oldest first."""
        stmt = select(runs).where(_c.state == RunState(state).value).order_by(_c.id).limit(limit)
        return self._runs(stmt)

    @rows.unwrap_bind_errors
    def resumable_runs(self, now: datetime) -> list[RunRecord]:
        """Queued or running runs that nobody holds a live lease on, oldest first (leases
        judged by the lease clock: PostgreSQL's, or ``now`` on SQLite)."""
        stmt = (
            select(runs).where(_c.state.in_(sql.RESUMABLE_STATES), sql.LEASE_FREE).order_by(_c.id)
        )
        with self._engine.connect() as conn:
            return [rows.run_from_row(r) for r in conn.execute(stmt, {"now": now})]

    def _runs(self, stmt: Any) -> list[RunRecord]:
        with self._engine.connect() as conn:
            return [rows.run_from_row(r) for r in conn.execute(stmt)]

    def get_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """The run's task runs: plain ones by key, then mapped elements by node and index."""
        stmt = sql.SELECT_TASK_RUNS.where(task_runs.c.run_id == run_id)
        with self._engine.connect() as conn:
            return [rows.task_run_from_row(r) for r in conn.execute(stmt)]

    def get_task_runs_of(self, run_ids: Collection[str]) -> dict[str, list[TaskRunRecord]]:
        """The task runs of each of ``run_ids`` (ordered as ``get_task_runs`` orders them),
        in one statement: for a batch of runs claimed together."""
        if not run_ids:
            return {}
        stmt = sql.SELECT_TASK_RUNS.where(task_runs.c.run_id.in_(sorted(run_ids)))
        out: dict[str, list[TaskRunRecord]] = {i: [] for i in run_ids}
        with self._engine.connect() as conn:
            for r in conn.execute(stmt):
                row = rows.task_run_from_row(r)
                out[row.run_id].append(row)
        return out

    def get_task_run(self, run_id: str, task_key: str) -> TaskRunRecord:
        """One task run; NotFound if the run has no such task."""
        stmt = select(task_runs).where(
            task_runs.c.run_id == run_id, task_runs.c.task_key == task_key
        )
        with self._engine.connect() as conn:
            found = conn.execute(stmt).first()
        if found is None:
            raise NotFound(f"run {run_id!r} has no task {task_key!r}")
        return rows.task_run_from_row(found)

    def get_attempts(
        self, run_id: str, task_key: str | None = None, task_keys: Collection[str] | None = None
    ) -> list[AttemptRecord]:
        """Finished attempts of the run (or of one task, or of those of ``task_keys``), by
        task key and number."""
        stmt = (
            select(attempts)
            .where(attempts.c.run_id == run_id)
            .order_by(attempts.c.task_key, attempts.c.number)
        )
        if task_key is not None:
            stmt = stmt.where(attempts.c.task_key == task_key)
        if task_keys is not None:
            stmt = stmt.where(attempts.c.task_key.in_(sorted(task_keys)))
        with self._engine.connect() as conn:
            return [rows.attempt_from_row(r) for r in conn.execute(stmt)]

    def get_events(
        self, run_id: str, after_id: int = 0, limit: int | None = None, kind: str | None = None
    ) -> list[EventRecord]:
        """The run's events with id > ``after_id`` (of ``kind`` only, if given), oldest first."""
        stmt = (
            select(events)
            .where(events.c.run_id == run_id, events.c.id > after_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        if kind is not None:
            stmt = stmt.where(events.c.kind == kind)
        with self._engine.connect() as conn:
            return [rows.event_from_row(r) for r in conn.execute(stmt)]

    @rows.unwrap_bind_errors
    def acquire_lease(
        self,
        run_id: str,
        owner: str,
        expires_at: datetime,
        now: datetime,
        *,
        take_over: str | None = None,
    ) -> RunRecord | None:
        """Take or renew the run's lease until ``expires_at``; None if someone else holds it.

        Succeeds when the lease is free, expired, already ``owner``'s, or held by
        ``take_over`` (an owner the caller has proved dead). Appends a "lease" event. On
        PostgreSQL the lease is judged by the server's clock: it lasts ``expires_at - now``
        from the statement's time there, and "expired" means by that clock (see
        ``statements.lease_now``).
        """
        params = {"k_id": run_id, "k_owner": owner, **sql.lease_params(expires_at, now)}
        stmt = sql.ACQUIRE_LEASE
        if take_over is not None:
            stmt = sql.ACQUIRE_LEASE_TAKE_OVER
            params["k_take_over"] = take_over
        with self._write.begin() as conn:
            if conn.execute(stmt, params).rowcount != 1:
                return None
            event = NewEvent(run_id, None, "lease", None, None, now, owner)
            conn.execute(sql.INSERT_EVENT, rows.event_values(event))
            return rows.run_from_row(conn.execute(sql.SELECT_RUN, {"k_id": run_id}).one())

    def release_lease(self, run_id: str, owner: str) -> bool:
        """Give up the lease if ``owner`` still holds it; True if it did."""
        with self._write.begin() as conn:
            return conn.execute(sql.RELEASE_LEASE, {"k_id": run_id, "k_owner": owner}).rowcount == 1

    @rows.unwrap_bind_errors
    def request_cancel(self, run_id: str, now: datetime) -> RunRecord:
        """Ask the run's driver to cancel it; appends a "cancel_requested" event.

        A no-op for finished runs and for runs already asked. NotFound for unknown runs.
        """
        with self._write.begin() as conn:
            found = conn.execute(sql.SELECT_RUN, {"k_id": run_id}).first()
            if found is None:
                raise NotFound(f"no run with id {run_id!r}")
            run = rows.run_from_row(found)
            if run.cancel_requested or run.state.finished:
                return run
            conn.execute(update(runs).where(_c.id == run_id).values(cancel_requested=True))
            event = NewEvent(run_id, None, "cancel_requested", None, None, now)
            conn.execute(sql.INSERT_EVENT, rows.event_values(event))
            return replace(run, cancel_requested=True)

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
            write_run_facts(conn, new)
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
            write_state(conn, run, RunState.CANCELED, now)
            return rows.run_from_row(conn.execute(select(runs).where(_r.id == run_id)).one())
