"""Runs, task runs, attempts, events, snapshots and code locations: the run's life in the store,
with the driver's one-transaction step (``apply``) and leases taken and given back one run at
a time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection, Mapping, Sequence
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
from sqlalchemy.exc import DBAPIError, IntegrityError

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
from legato.domain.states import (
    RunState,
    TaskState,
    check_run_transition,
)
from legato.observability import metrics
from legato.store import dialect, rows
from legato.store import statements as sql
from legato.store.alert_store import run_fact_values, write_check_facts, write_run_facts
from legato.store.asset_store import write_materializations
from legato.store.check_store import write_check_results
from legato.store.database import Part, of_pipelines
from legato.store.lineage_store import write_lineage
from legato.store.partition_status import status_update_values, write_new_run, write_state
from legato.store.schema import (
    attempts,
    code_locations,
    code_texts,
    events,
    pool_claims,
    runs,
    snapshots,
    task_runs,
    trigger_events,
)

_r = runs.c
_c = runs.c


def insert_trigger_events(conn: Connection, items: Sequence[NewTriggerEvent]) -> None:
    """Insert trigger events inside the caller's transaction."""
    if items:
        conn.execute(insert(trigger_events), [i.values() for i in items])


#: The store latency of a driver's whole step (bound once: apply() is the hot path).
_STEP_SECONDS = metrics.STORE_SECONDS.labels("step")



@functools.cache
def _can_pipeline() -> bool:
    """Whether psycopg's libpq can pipeline (14 or newer; the binary wheel's always can): with
    an older one, every step goes the unpipelined way."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


class RunStore(Part):
    """Runs, task runs, attempts, events, snapshots and code locations."""

    @rows.unwrap_bind_errors
    def save_snapshot(
        self, pipeline: str, code_version: str, snapshot: dict[str, Any], now: datetime
    ) -> bool:
        """Store the pipeline's snapshot unless one exists for this code version.

        Returns True when it was stored now. The first snapshot of a code version wins.
        """
        # SQLAlchemy 2.1 drops an INSERT's rowcount unless asked to keep it.
        stmt = dialect.insert_ignoring_conflict(self._backend, snapshots).execution_options(
            preserve_rowcount=True
        )
        values = {
            "pipeline": pipeline,
            "code_version": code_version,
            "snapshot": rows.to_json(snapshot),
            "created_at": now,
        }
        with self._write.begin() as conn:
            return conn.execute(stmt, values).rowcount == 1

    @rows.unwrap_bind_errors
    def save_code_texts(self, texts: Mapping[str, str], now: datetime) -> None:
        """Keep the source texts by their sha256 (those already kept are left as they are)."""
        if not texts:
            return
        with self._engine.connect() as conn:
            have = set(
                conn.execute(
                    select(code_texts.c.sha256).where(code_texts.c.sha256.in_(list(texts)))
                ).scalars()
            )
        missing = [
            {"sha256": sha, "text": text, "created_at": now}
            for sha, text in texts.items()
            if sha not in have
        ]
        if missing:
            stmt = dialect.insert_ignoring_conflict(self._backend, code_texts)
            with self._write.begin() as conn:
                conn.execute(stmt, missing)

    def get_code_texts(self, hashes: Collection[str]) -> dict[str, str]:
        """The kept source texts of these sha256 hashes (those not kept are left out)."""
        if not hashes:
            return {}
        with self._engine.connect() as conn:
            found = conn.execute(
                select(code_texts.c.sha256, code_texts.c.text).where(
                    code_texts.c.sha256.in_(list(hashes))
                )
            )
            return {sha: text for sha, text in found}

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
            # Two processes loading the project at once (two schedulers starting) would both
            # find no row to delete and both insert: one at a time.
            dialect.lock_names(conn, [f"code_location:{location.name}"])
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

    def apply(self, changes: Changes) -> None:
        """Write one driver step atomically, provided ``changes.owner`` still holds the lease.

        Extends the lease to ``changes.lease_expires_at``, updates the run (state, times, error;
        a pending cancel request is never cleared), inserts new task runs, replaces changed
        task runs, inserts attempts, appends events and records materializations. Raises
        LeaseLost, writing nothing, if the lease is gone.
        """
        self.apply_all([changes])

    def apply_all(self, batch: Sequence[Changes]) -> None:
        """Write the steps of several runs' drivers in one transaction: all or nothing.

        As ``apply`` for each; if any run's lease is gone (LeaseLost) or a write fails,
        nothing is written, and the caller may write each step on its own to learn whose.
        One commit for many steps: a daemon driving many short runs writes their starts and
        ends together instead of waiting for a commit (a WAL flush on PostgreSQL) each.
        """
        if not batch:
            return
        leases = []
        for changes in batch:
            run_id = changes.run_id
            if changes.run is not None and changes.run.id != run_id:
                raise ValueError(f"changes for run {run_id} carry run {changes.run.id}")
            rows.check_run_ids(run_id, changes.new_task_runs, "task run")
            rows.check_run_ids(run_id, changes.task_runs, "task run")
            rows.check_run_ids(run_id, changes.attempts, "attempt")
            rows.check_run_ids(run_id, changes.events, "event")
            rows.check_run_ids(run_id, changes.materializations, "materialization")
            for made in changes.elements:
                if made.count < 0:
                    raise ValueError(f"{made.node}: a map cannot have {made.count} elements")
            leases.append({
                "k_id": run_id,
                "k_owner": changes.owner,
                "k_expires": changes.lease_expires_at,
                "k_ttl": changes.lease_seconds,
            })
        fast = self._fast()
        conn = self._db.step_connection()
        began = time.perf_counter()
        steps = list(zip(batch, leases, strict=True))
        if fast.checked:
            self._apply_checked(conn, fast, steps)
        else:
            with conn.begin():
                for changes, lease in steps:
                    if self._renew(conn, fast, changes, lease) != 1:
                        raise self._lease_lost(conn, changes.run_id, changes.owner)  # rolls back
                    self._write_step(conn, fast, changes)
        # Its statements run on the DBAPI cursor, unseen by the engine's events: timed whole.
        _STEP_SECONDS.observe(time.perf_counter() - began)

    def _fast(self) -> sql.PreparedSet:
        """The hot-path statements, compiled for this store's dialect on first use."""
        fast = self._db.prepared
        if fast is None:
            fast = self._db.prepared = sql.PreparedSet(self._engine.dialect)
        return fast

    def _apply_checked(
        self,
        conn: Connection,
        fast: sql.PreparedSet,
        steps: Sequence[tuple[Changes, dict[str, Any]]],
    ) -> None:
        # PostgreSQL: the checked statements fail on a lost lease or a missing task run, so
        # nothing waits for a row count. Plain steps (most of them: a task ended, the next
        # started, the run ended with its alert facts) are pipelined, BEGIN to COMMIT: one
        # round trip. The rarer writes (a map's elements, lineage, materializations, checks)
        # go through SQLAlchemy, unpipelined.
        plain = _can_pipeline() and not any(
            c.elements or c.lineage or c.materializations or c.checks for c, _ in steps
        )
        dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        try:
            if plain:
                self._pipelined(conn, fast, steps)
            else:
                with conn.begin():
                    for changes, lease in steps:
                        self._renew(conn, fast, changes, lease)
                        self._write_step(conn, fast, changes)
        except (DBAPIError, dbapi_error) as exc:
            said = str(exc.orig if isinstance(exc, DBAPIError) else exc)
            if sql.LEASE_LOST in said:
                if len(steps) > 1:  # which one is not said: the caller asks each alone
                    raise LeaseLost(f"a lease of the runs {[c.run_id for c, _ in steps]} is "
                                    "lost") from None
                changes = steps[0][0]
                with conn.begin():
                    raise self._lease_lost(conn, changes.run_id, changes.owner) from None
            if sql.MISSING_TASK_RUN in said:
                raise self._missing_task_runs(steps[0][0] if len(steps) == 1 else None) from None
            if isinstance(exc, DBAPIError):
                raise
            raise DBAPIError.instance(
                "COMMIT", None, exc, dbapi_error, dialect=self._engine.dialect,
                connection_invalidated=conn.invalidated,
            ) from exc

    def _pipelined(
        self,
        conn: Connection,
        fast: sql.PreparedSet,
        steps: Sequence[tuple[Changes, dict[str, Any]]],
    ) -> None:
        """The steps in one psycopg pipeline: its own BEGIN and COMMIT, one Sync at the end.

        In autocommit mode psycopg sends no BEGIN of its own (which it would await: a round
        trip) and ``commit()`` no Sync of its own (another). The connection is between
        transactions here (each step ends its own), so SQLAlchemy has nothing open on it.
        """
        raw: Any = conn.connection.driver_connection
        raw.autocommit = True
        try:
            with raw.pipeline():
                raw.execute("BEGIN")
                for changes, lease in steps:
                    self._renew(conn, fast, changes, lease)
                    self._write_step(conn, fast, changes)
                raw.execute("COMMIT")
            # Leaving the pipeline waited for every answer, COMMIT's too: the step is durable.
        except BaseException:
            try:
                raw.rollback()  # the block left open by the failed statement, if any
            except Exception:
                conn.invalidate()  # the connection is gone; the next step opens another
            raise
        finally:
            if not conn.invalidated:
                raw.autocommit = False

    @staticmethod
    def _renew(
        conn: Connection, fast: sql.PreparedSet, changes: Changes, lease: dict[str, Any]
    ) -> int:
        """Extend the lease (and write the run's progress); rows touched: 1 while held."""
        run = changes.run
        if run is None:
            return fast.renew_lease.execute(conn, [lease])
        lease.update(rows.run_progress_values(run))
        touched = fast.renew_lease_and_update_run.execute(conn, [lease])
        if run.partition is not None and any(e.kind == "run_state" for e in changes.events):
            # Pipelined with the rest of the step on PostgreSQL: no round trip of its own.
            at = run.finished_at or run.started_at or run.created_at
            fast.update_partition_status.execute(conn, [status_update_values(run, at)])
        return touched

    def _write_step(self, conn: Connection, fast: sql.PreparedSet, changes: Changes) -> None:
        """Everything of the step but the lease, inside ``conn``'s transaction."""
        for made in changes.elements:  # before the step's updates, which may touch them
            if made.count > 0:
                conn.execute(sql.INSERT_ELEMENTS, {
                    "run_id": changes.run_id, "node": made.node, "count": made.count})
        if changes.new_task_runs:
            fast.insert_task_run.execute(
                conn, [rows.task_run_values(t) for t in changes.new_task_runs]
            )
        if changes.task_runs:
            params = [rows.task_run_update_values(t) for t in changes.task_runs]
            touched = fast.update_task_run.execute(conn, params)
            if not fast.update_task_run.checked and touched != len(params):
                raise self._missing_task_runs(changes)
        if changes.attempts:
            fast.insert_attempt.execute(conn, [rows.attempt_values(a) for a in changes.attempts])
        if changes.events or changes.elements:
            self._write_events(conn, fast, changes)
            # The alert outbox, in the same transaction as the state change it reports.
            facts = run_fact_values(changes.events)
            if facts:
                fast.insert_run_fact.execute(conn, facts)
        if changes.lineage:  # the lineage outbox likewise ([lineage] set)
            write_lineage(conn, changes.lineage)
        if changes.materializations:
            # With the success of the tasks that produced them, or not at all.
            write_materializations(conn, changes.materializations)
        if changes.checks:  # with the end of the attempt whose output they checked
            write_check_results(conn, changes.checks)
            write_check_facts(conn, changes.checks)  # check_failed alerts and resolves

    @staticmethod
    def _write_events(conn: Connection, fast: sql.PreparedSet, changes: Changes) -> None:
        """The step's events, those of the elements it made (NewElements) in their place."""
        events, done = changes.events, 0
        for made in sorted(changes.elements, key=lambda m: m.events_before):
            if made.events_before > done:
                fast.insert_event.execute(
                    conn, [rows.event_values(e) for e in events[done:made.events_before]]
                )
                done = made.events_before
            if made.count > 0:
                conn.execute(sql.INSERT_ELEMENT_EVENTS, {
                    "run_id": changes.run_id, "node": made.node, "count": made.count,
                    "at": made.at})
        if done < len(events):
            fast.insert_event.execute(conn, [rows.event_values(e) for e in events[done:]])

    @staticmethod
    def _missing_task_runs(changes: Changes | None) -> StoreError:
        if changes is None:  # a batch: the caller asks each alone
            return StoreError("some of the task runs of a batch of steps do not exist")
        keys = sorted(t.task_key for t in changes.task_runs)
        return StoreError(f"run {changes.run_id}: some of the task runs {keys} do not exist")

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
