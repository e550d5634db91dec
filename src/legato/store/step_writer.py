"""The driver's step in the store: one transaction per step (``apply``), or, for several
runs' steps at once, one round trip on PostgreSQL (pipelined), each step written only while
its driver still holds the run's lease (``RunStore`` holds this, as the run's own writes).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from legato.domain.records import Changes, LeaseLost, StoreError
from legato.observability import metrics
from legato.store import rows
from legato.store import statements as sql
from legato.store.alert_store import run_fact_values, write_check_facts
from legato.store.asset_store import write_materializations
from legato.store.check_store import write_check_results
from legato.store.database import Part
from legato.store.lineage_store import write_lineage
from legato.store.partition_status import status_update_values

#: The store latency of a driver's whole step (bound once: apply() is the hot path).
_STEP_SECONDS = metrics.STORE_SECONDS.labels("step")


@functools.cache
def _can_pipeline() -> bool:
    """Whether psycopg's libpq can pipeline (14 or newer; the binary wheel's always can): with
    an older one, every step goes the unpipelined way."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


class StepWriter(Part):
    """Writing drivers' steps: task runs, attempts, events and the run, with the lease."""

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
