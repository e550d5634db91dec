"""The Store: every read and write of Legato's durable state goes through this class.

All datetimes in and out are timezone-aware UTC. The store never reads the wall clock; callers
pass ``now``.

Event ids and ordering: every transaction that appends events for a run first UPDATEs (or, in
``create_run``, INSERTs) that run's row. On PostgreSQL the row lock this takes serialises the
event writers of one run, so event ids of a run become visible in increasing order and a reader
polling ``get_events(run_id, after_id=last_seen)`` never skips one. (SQLite has one writer.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from legato.domain.ids import new_run_id
from legato.domain.records import (
    Ambiguous,
    AttemptRecord,
    Changes,
    CodeLocationRecord,
    DuplicateRun,
    EventRecord,
    LeaseLost,
    NewEvent,
    NewTriggerEvent,
    NotFound,
    RunRecord,
    StoreError,
    TaskRunRecord,
)
from legato.domain.states import RunState
from legato.store import db, rows
from legato.store import statements as sql
from legato.store.automation import AutomationStore, insert_trigger_events
from legato.store.browse import BrowseStore
from legato.store.claims import ClaimStore
from legato.store.migrate import check_schema, ensure_schema
from legato.store.schema import attempts, code_locations, events, runs, snapshots, task_runs

__all__ = ["PipelineSummary", "Store", "new_run_id"]

_c = runs.c


class PipelineSummary(NamedTuple):
    """One line of ``Store.pipelines_summary()``."""

    pipeline: str
    run_count: int
    last_run: RunRecord


class Store(AutomationStore, BrowseStore, ClaimStore):
    """Durable state of runs, task runs, attempts, events and pipeline snapshots.

    Open with :meth:`Store.open`. Thread-safe (each call checks a connection out of the pool);
    after ``os.fork()`` the child must call :meth:`after_fork` before using an inherited store.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine made by ``legato.store.db.create_engine``; prefer :meth:`open`."""
        self._engine = engine
        self._write = engine.execution_options(**db.WRITE)
        self._backend: db.Backend = db.backend_of(engine.url)
        self._prepared: sql.PreparedSet | None = None  # compiled on first apply()
        # apply() runs once per driver step: a connection kept per thread saves the pool's
        # check-out and return (events, resets) on every step.
        self._local = threading.local()
        self._kept: list[Connection] = []
        self._kept_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to the database at ``url``, migrating its schema first if it is new or old.

        With ``migrate=False`` a database that is not at the current schema raises StoreError.
        """
        engine = db.create_engine(url)
        try:
            if migrate:
                ensure_schema(engine)
            else:
                check_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        """Close the pooled connections (a later call would open new ones)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for conn in kept:
            with suppress(Exception):
                conn.close()
        self._local = threading.local()
        self._engine.dispose()

    def _step_connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._write.connect()
            self._local.conn = conn
            with self._kept_lock:
                self._kept.append(conn)
        return conn

    def after_fork(self) -> None:
        """Forget the connections inherited from the parent process (without closing them)."""
        self._engine.dispose(close=False)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def url(self) -> str:
        """The database URL (normalised, password included) - enough to open it again."""
        return self._engine.url.render_as_string(hide_password=False)

    @property
    def backend(self) -> db.Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._backend

    # -- health --------------------------------------------------------------------------------

    def ping(self) -> None:
        """Run a trivial query; raise StoreError if the database cannot be reached."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise StoreError(f"store {self!r} is unreachable: {exc.orig}") from exc

    def check_writable(self) -> None:
        """Open a write transaction and run a no-op UPDATE; raise StoreError if that fails."""
        try:
            with self._write.connect() as conn, conn.begin() as tx:
                conn.execute(update(snapshots).where(text("1 = 0")).values(pipeline="x"))
                tx.rollback()
        except DBAPIError as exc:
            raise StoreError(f"store {self!r} is not writable: {exc.orig}") from exc

    # -- snapshots -----------------------------------------------------------------------------

    @rows.unwrap_bind_errors
    def save_snapshot(
        self, pipeline: str, code_version: str, snapshot: dict[str, Any], now: datetime
    ) -> bool:
        """Store the pipeline's snapshot unless one exists for this code version.

        Returns True when it was stored now. The first snapshot of a code version wins.
        """
        # Imported here: the PostgreSQL dialect costs ~35 ms to import, wasted on SQLite.
        dialect_insert: Callable[[Any], Any]
        if self._backend == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        # SQLAlchemy 2.1 drops an INSERT's rowcount unless asked to keep it.
        stmt = (
            dialect_insert(snapshots)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        values = {
            "pipeline": pipeline,
            "code_version": code_version,
            "snapshot": rows.to_json(snapshot),
            "created_at": now,
        }
        with self._write.begin() as conn:
            return conn.execute(stmt, values).rowcount == 1

    def save_code_location(self, location: CodeLocationRecord) -> None:
        """Replace what is known of the project ``location.name`` with this load's findings."""
        values = {
            "name": location.name,
            "root": location.root,
            "loaded_at": location.loaded_at,
            "pipelines": rows.to_json(location.pipelines),
            "errors": rows.to_json(location.errors),
        }
        with self._write.begin() as conn:
            conn.execute(code_locations.delete().where(code_locations.c.name == location.name))
            conn.execute(code_locations.insert(), values)

    def get_code_location(self, name: str) -> CodeLocationRecord | None:
        """What the last recorded load of project ``name`` found, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(code_locations).where(code_locations.c.name == name)
            ).one_or_none()
        if row is None:
            return None
        return CodeLocationRecord(
            name=row.name,
            root=row.root,
            loaded_at=row.loaded_at,
            pipelines=rows.from_json(row.pipelines),
            errors=rows.from_json(row.errors),
        )

    def get_snapshot(self, pipeline: str, code_version: str) -> dict[str, Any] | None:
        """The snapshot saved for ``(pipeline, code_version)``, or None."""
        stmt = select(snapshots.c.snapshot).where(
            snapshots.c.pipeline == pipeline, snapshots.c.code_version == code_version
        )
        with self._engine.connect() as conn:
            found = conn.execute(stmt).scalar_one_or_none()
        return None if found is None else dict(rows.from_json(found))

    # -- runs ----------------------------------------------------------------------------------

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
                if task_runs:
                    conn.execute(sql.INSERT_TASK_RUN, [rows.task_run_values(t) for t in task_runs])
                if events:
                    conn.execute(sql.INSERT_EVENT, [rows.event_values(e) for e in events])
                insert_trigger_events(conn, trigger_events)
        except IntegrityError as exc:
            # Lost a race with another creator of the same key (PostgreSQL), or a reused id.
            if run.run_key is not None:
                with self._engine.connect() as conn:
                    existing = self._run_by_key(conn, run.run_key)
                if existing is not None:
                    raise DuplicateRun(existing) from None
            raise StoreError(f"cannot create run {run.id}: {exc.orig}") from exc
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

    def find_run(self, prefix: str) -> RunRecord:
        """The run whose id is ``prefix``, else the only run whose id starts with it.

        Raises NotFound, or Ambiguous listing the candidates.
        """
        prefix = prefix.strip()
        if not prefix:
            raise NotFound("no run id given")
        shown = 10
        with self._engine.connect() as conn:
            exact = conn.execute(sql.SELECT_RUN, {"k_id": prefix}).first()
            if exact is not None:
                return rows.run_from_row(exact)
            stmt = (
                select(runs)
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

    def pipelines_summary(self) -> list[PipelineSummary]:
        """Each pipeline that has runs: its name, number of runs and newest run."""
        agg = (
            select(_c.pipeline, func.count(), func.max(_c.id))
            .group_by(_c.pipeline)
            .order_by(_c.pipeline)
        )
        with self._engine.connect() as conn:
            counts = conn.execute(agg).all()
            newest = {
                r.id: rows.run_from_row(r)
                for r in conn.execute(select(runs).where(_c.id.in_([c[2] for c in counts])))
            }
        return [PipelineSummary(name, int(n), newest[last]) for name, n, last in counts]

    def _runs(self, stmt: Any) -> list[RunRecord]:
        with self._engine.connect() as conn:
            return [rows.run_from_row(r) for r in conn.execute(stmt)]

    # -- task runs, attempts, events -----------------------------------------------------------

    def get_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """The run's task runs: plain ones by key, then mapped elements by node and index."""
        stmt = sql.SELECT_TASK_RUNS.where(task_runs.c.run_id == run_id)
        with self._engine.connect() as conn:
            return [rows.task_run_from_row(r) for r in conn.execute(stmt)]

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

    def get_attempts(self, run_id: str, task_key: str | None = None) -> list[AttemptRecord]:
        """Finished attempts of the run (or of one task), by task key and number."""
        stmt = (
            select(attempts)
            .where(attempts.c.run_id == run_id)
            .order_by(attempts.c.task_key, attempts.c.number)
        )
        if task_key is not None:
            stmt = stmt.where(attempts.c.task_key == task_key)
        with self._engine.connect() as conn:
            return [rows.attempt_from_row(r) for r in conn.execute(stmt)]

    def get_events(
        self, run_id: str, after_id: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """The run's events with id > ``after_id``, oldest first."""
        stmt = (
            select(events)
            .where(events.c.run_id == run_id, events.c.id > after_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [rows.event_from_row(r) for r in conn.execute(stmt)]

    # -- leases and the driver's writes --------------------------------------------------------

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

    def apply(self, changes: Changes) -> None:
        """Write one driver step atomically, provided ``changes.owner`` still holds the lease.

        Extends the lease to ``changes.lease_expires_at``, updates the run (state, times, error;
        a pending cancel request is never cleared), inserts new task runs, replaces changed
        task runs, inserts attempts and appends events. Raises LeaseLost, writing nothing, if
        the lease is gone.
        """
        run_id = changes.run_id
        if changes.run is not None and changes.run.id != run_id:
            raise ValueError(f"changes for run {run_id} carry run {changes.run.id}")
        rows.check_run_ids(run_id, changes.new_task_runs, "task run")
        rows.check_run_ids(run_id, changes.task_runs, "task run")
        rows.check_run_ids(run_id, changes.attempts, "attempt")
        rows.check_run_ids(run_id, changes.events, "event")
        lease = {
            "k_id": run_id,
            "k_owner": changes.owner,
            "k_expires": changes.lease_expires_at,
            "k_ttl": changes.lease_seconds,
        }
        fast = self._prepared
        if fast is None:
            fast = self._prepared = sql.PreparedSet(self._engine.dialect)
        conn = self._step_connection()
        with conn.begin():
            if changes.run is None:
                held = fast.renew_lease.execute(conn, [lease])
            else:
                lease.update(rows.run_progress_values(changes.run))
                held = fast.renew_lease_and_update_run.execute(conn, [lease])
            if held != 1:
                raise self._lease_lost(conn, run_id, changes.owner)  # rolls back
            if changes.new_task_runs:
                fast.insert_task_run.execute(
                    conn, [rows.task_run_values(t) for t in changes.new_task_runs]
                )
            if changes.task_runs:
                params = [rows.task_run_update_values(t) for t in changes.task_runs]
                if fast.update_task_run.execute(conn, params) != len(params):
                    keys = sorted(t.task_key for t in changes.task_runs)
                    raise StoreError(f"run {run_id}: some of the task runs {keys} do not exist")
            if changes.attempts:
                fast.insert_attempt.execute(
                    conn, [rows.attempt_values(a) for a in changes.attempts]
                )
            if changes.events:
                fast.insert_event.execute(conn, [rows.event_values(e) for e in changes.events])

    @staticmethod
    def _lease_lost(conn: Connection, run_id: str, owner: str) -> LeaseLost:
        found = conn.execute(sql.SELECT_RUN, {"k_id": run_id}).first()
        if found is None:
            return LeaseLost(f"run {run_id} does not exist")
        holder = found.lease_owner or "nobody"
        return LeaseLost(f"{owner} lost the lease on run {run_id}; it is held by {holder}")

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
