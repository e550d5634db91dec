"""Retention: finding the finished runs a policy lets go, and deleting them in small batches.

A run goes with its task runs, attempts and events (their foreign keys cascade). Kept
whatever their age: runs not finished, the newest run of each pipeline, the newest run of
each of a pipeline's partitions (its partition's state is that run's), a run an unfinished
re-run was made from (it reads that run's results), and a run whose results another run
reuses while that run's results stay (a re-run's reused results stay in the folder of the
run that made them: ``task_runs.reused_from``). What other tables say about
a run stays (materializations, check results, alerts): the history of an asset or an alert
outlives the runs that made it. Trigger events go once their run has (or, having made
none, once they are as old), but for those of triggers whose event keys are all they have
to tell what was taken (a file trigger's: a file still in its folder would fire again).

A run's logs and results may go before the run (shorter windows, same keeping rules): the
run then gets an event of kind ``logs_pruned`` or ``results_pruned`` saying so, which is how
readers tell "removed by retention" from "never written", and how the next pass skips it.

Run ids begin with their creation time (``domain/ids.py``), so "made before T" is a range of
the primary key: finding a batch reads the oldest runs only, however many there are.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
    tuple_,
)

from legato.domain.records import NewEvent
from legato.domain.states import RunState
from legato.store import rows
from legato.store.database import Part
from legato.store.schema import (
    attempts,
    events,
    partition_status,
    runs,
    task_runs,
    trigger_events,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_r = runs.c
_FINISHED = [s.value for s in RunState if s.finished]
_UNFINISHED = [s.value for s in RunState if not s.finished]

#: Event kinds that say a run's logs, or its results, were removed before the run.
LOGS_PRUNED = "logs_pruned"
RESULTS_PRUNED = "results_pruned"
PRUNED_KINDS = (LOGS_PRUNED, RESULTS_PRUNED)


def _results_reused() -> ColumnElement[bool]:
    """A run some other run reuses results of, while that other run's results stay."""
    reader = task_runs.alias("reader")
    reader_pruned = exists().where(
        events.c.run_id == reader.c.run_id, events.c.kind == RESULTS_PRUNED
    )
    # Saying "not null" lets PostgreSQL read the partial index of the few rows that reuse,
    # not hash every task run of the store for each batch.
    reuses = and_(reader.c.reused_from.is_not(None), reader.c.reused_from == _r.id)
    return exists().where(reuses, not_(reader_pruned))


def _id_before(t: datetime) -> str:
    """An id bound: every run made before ``t`` has a smaller id (``new_run_id``)."""
    ms = max(0, (t - _EPOCH) // timedelta(milliseconds=1))
    return f"{min(ms, 16**12 - 1):012x}"


@dataclass(frozen=True)
class PrunedRun:
    """A run a policy lets go, with what deleting it would remove."""

    id: str
    pipeline: str
    state: str
    created_at: datetime


@dataclass(frozen=True)
class Removed:
    """What a delete removed: runs, and their task runs, attempts and events."""

    runs: int = 0
    task_runs: int = 0
    attempts: int = 0
    events: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(
            self.runs + other.runs,
            self.task_runs + other.task_runs,
            self.attempts + other.attempts,
            self.events + other.events,
        )


class RetentionStore(Part):
    """Finds and deletes the runs a retention policy lets go (see the module docstring)."""

    def prunable(
        self,
        *,
        before: datetime,
        failed_before: datetime,
        limit: int = 500,
        after: str | None = None,
    ) -> list[PrunedRun]:
        """The oldest finished runs made before ``before`` (failed runs: before
        ``failed_before``) that nothing keeps, ``limit`` at most, oldest first (from the
        one after run id ``after``, to page without deleting)."""
        failed_ok = or_(_r.state != RunState.FAILED.value, _r.id < _id_before(failed_before))
        return self._oldest_unkept(before, and_(failed_ok, not_(_results_reused())), limit, after)

    def files_prunable(
        self, kind: str, *, before: datetime, limit: int = 500, after: str | None = None
    ) -> list[PrunedRun]:
        """Like ``prunable``, the runs whose logs (``kind`` LOGS_PRUNED) or results
        (RESULTS_PRUNED) may go: made before ``before``, not failed (a failed run's files
        are what one looks at: they stay as long as it does), not pruned of them yet."""
        done = select(events.c.run_id).where(events.c.kind == kind)
        not_failed = and_(_r.state != RunState.FAILED.value, not_(_r.id.in_(done)))
        if kind == RESULTS_PRUNED:
            not_failed = and_(not_failed, not_(_results_reused()))
        return self._oldest_unkept(before, not_failed, limit, after)

    def _oldest_unkept(
        self, before: datetime, also: ColumnElement[bool], limit: int, after: str | None
    ) -> list[PrunedRun]:
        newest_of_pipeline = select(func.max(_r.id)).group_by(_r.pipeline)
        # Each partition's newest run is what the kept status points at (partition_status.py).
        newest_of_partition = select(partition_status.c.run_id)
        rerun_sources = select(_r.parent_run_id).where(
            _r.parent_run_id.is_not(None), _r.state.in_(_UNFINISHED)
        )
        stmt = (
            select(_r.id, _r.pipeline, _r.state, _r.created_at)
            .where(
                _r.id < _id_before(before),
                _r.state.in_(_FINISHED),
                also,
                not_(_r.id.in_(newest_of_pipeline)),
                not_(_r.id.in_(newest_of_partition)),
                not_(_r.id.in_(rerun_sources)),
            )
            .order_by(_r.id)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(_r.id > after)
        with self._engine.connect() as conn:
            return [PrunedRun(*row) for row in conn.execute(stmt)]

    def mark_pruned(self, ids: Sequence[str], kind: str, at: datetime, message: str) -> None:
        """Record on each run that its logs or results (``kind``) were removed."""
        if not ids:
            return
        values = [rows.event_values(NewEvent(i, None, kind, None, None, at, message)) for i in ids]
        with self._write.begin() as conn:
            conn.execute(events.insert(), values)

    def results_gone(self, run_ids: Collection[str]) -> set[str]:
        """Those of ``run_ids`` whose results were removed: marked RESULTS_PRUNED, or no
        longer in the store at all (a re-run's reused results live in their first run)."""
        if not run_ids:
            return set()
        ids = sorted(run_ids)
        marked = select(events.c.run_id).where(
            events.c.run_id.in_(ids), events.c.kind == RESULTS_PRUNED
        )
        with self._engine.connect() as conn:
            present = {row[0] for row in conn.execute(select(_r.id).where(_r.id.in_(ids)))}
            gone = {row[0] for row in conn.execute(marked)}
        return gone | (set(ids) - present)

    def pruned_files(self, run_id: str) -> frozenset[str]:
        """Which of LOGS_PRUNED and RESULTS_PRUNED happened to a run."""
        stmt = select(events.c.kind).where(
            events.c.run_id == run_id, events.c.kind.in_(PRUNED_KINDS)
        )
        with self._engine.connect() as conn:
            return frozenset(row[0] for row in conn.execute(stmt))

    def count_children(self, ids: Sequence[str]) -> Removed:
        """What deleting these runs would remove (a dry run)."""
        if not ids:
            return Removed()
        with self._engine.connect() as conn:

            def count(table: Table) -> int:
                stmt = select(func.count()).select_from(table).where(table.c.run_id.in_(ids))
                return int(conn.execute(stmt).scalar() or 0)

            return Removed(len(ids), count(task_runs), count(attempts), count(events))

    def delete_runs(self, ids: Sequence[str]) -> Removed:
        """Delete these runs, with their task runs, attempts and events, in one short
        transaction; a run that is not finished (any more), or whose results a run made
        since reuses, stays."""
        if not ids:
            return Removed()
        with self._write.begin() as conn:
            finished = and_(_r.id.in_(ids), _r.state.in_(_FINISHED), not_(_results_reused()))
            gone = [row[0] for row in conn.execute(select(_r.id).where(finished))]
            if not gone:
                return Removed()
            # Children first, each counted: what the user is told was removed.
            n_att = conn.execute(delete(attempts).where(attempts.c.run_id.in_(gone))).rowcount
            n_ev = conn.execute(delete(events).where(events.c.run_id.in_(gone))).rowcount
            n_tr = conn.execute(delete(task_runs).where(task_runs.c.run_id.in_(gone))).rowcount
            conn.execute(delete(runs).where(_r.id.in_(gone)))
            return Removed(len(gone), n_tr, n_att, n_ev)

    def trigger_events_prunable(
        self, before: datetime, keep: Collection[tuple[str, str]], limit: int = 5000
    ) -> list[int]:
        """Ids of the oldest trigger events received before ``before`` whose run is gone (or
        that made none), but for those of the (pipeline, trigger) pairs in ``keep``."""
        c = trigger_events.c
        stmt = (
            select(c.id)
            .where(c.received_at < before, not_(exists().where(_r.id == c.run_id)))
            .order_by(c.id)
            .limit(limit)
        )
        if keep:
            stmt = stmt.where(not_(tuple_(c.pipeline, c.trigger).in_(sorted(keep))))
        with self._engine.connect() as conn:
            return [int(row[0]) for row in conn.execute(stmt)]

    def delete_trigger_events(self, ids: Sequence[int]) -> int:
        """Delete these trigger events; how many went."""
        gone = 0
        with self._write.begin() as conn:
            for at in range(0, len(ids), 500):  # within every backend's limit on bound values
                chunk = trigger_events.c.id.in_(ids[at : at + 500])
                gone += conn.execute(delete(trigger_events).where(chunk)).rowcount
        return gone
