"""Browsing: filtered run lists, recent runs per pipeline, per-pipeline counts, and operator marks
on a finished run's tasks.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    func,
    insert,
    select,
    union_all,
    update,
)

from legato.domain.records import (
    NewEvent,
    NotFound,
    RunRecord,
)
from legato.domain.states import (
    MarkJudge,
    RunState,
    TaskState,
)
from legato.store import dialect, rows
from legato.store.alert_store import write_run_facts
from legato.store.database import Part, of_pipelines
from legato.store.partition_status import write_state
from legato.store.schema import (
    events,
    runs,
    task_runs,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_r = runs.c
_t = task_runs.c
_ID_MS_END = 16**12  # run ids start with 12 hex digits of milliseconds since the epoch
_c = runs.c
#: Most index scans ``list_runs`` merges (pipelines times states); past it, one ``IN`` scan.
_MAX_BRANCHES = 32


def _id_at(t: datetime) -> int | None:
    """The millisecond a run created at ``t`` has at the start of its id (``new_run_id``).

    A created_at range is therefore also a range of ids, which the runs list adds to its
    created_at conditions: the newest-first scan by id then starts and stops at the range
    instead of sorting every run in it. None when ``t`` is naive (the store refuses it
    anyway) or outside what ids can encode.
    """
    if t.tzinfo is None or t.utcoffset() is None:
        return None
    ms = (t - _EPOCH) // timedelta(milliseconds=1)
    return ms if 0 <= ms < _ID_MS_END else None


class PipelineSummary(NamedTuple):
    """One line of ``Store.pipelines_summary()``."""

    pipeline: str
    run_count: int
    last_run: RunRecord


class BrowseStore(Part):
    """Browsing."""

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        state: RunState | str | Collection[RunState | str] | None = None,
        partition: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = 50,
        before_id: str | None = None,
        backfill_id: str | None = None,
        pipelines: Collection[str] | None = None,
        environment: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, filtered; page with ``before_id=<last id of the previous page>``.

        ``pipelines`` keeps runs of those pipelines only (None: of any), as ``pipeline``
        keeps those of one. ``environment`` keeps runs made in that environment; it has no
        index of its own, since a store belongs to one environment and nearly every run
        matches (those made before environments were recorded have none).

        Run ids sort by creation time, so paging by id is stable while new runs arrive and
        costs one index range scan however deep the page. Every filter keeps to such a scan
        (indexes on pipeline, state, pipeline + state and partition, each followed by id), so
        a page costs about the same with 100,000 runs as with 100 (``bench/api.py``).
        ``created_after``/``created_before`` also bound the id, which ``new_run_id`` starts
        with the creation time; a run stored under an id of another form may be left out.
        """
        names = None if pipelines is None else sorted(set(pipelines))
        if pipeline is not None:
            names = [pipeline] if names is None or pipeline in names else []
        if names == []:
            return []
        stmt = select(runs)
        if partition is not None:
            stmt = stmt.where(_r.partition == partition)
        if created_after is not None:
            stmt = stmt.where(_r.created_at >= created_after)
            low = _id_at(created_after)
            if low is not None:
                stmt = stmt.where(_r.id >= f"{low:012x}")
        if created_before is not None:
            stmt = stmt.where(_r.created_at < created_before)
            high = _id_at(created_before)
            if high is not None and high + 1 < _ID_MS_END:
                stmt = stmt.where(_r.id < f"{high + 1:012x}")
        if before_id is not None:
            stmt = stmt.where(_r.id < before_id)
        if backfill_id is not None:
            stmt = stmt.where(_r.backfill_id == backfill_id)
        if environment is not None:
            stmt = stmt.where(_r.environment == environment)
        states: list[str] | None = None
        if state is not None:
            given = [state] if isinstance(state, str) else list(state)
            states = sorted({RunState(s).value for s in given})
        any_one: list[str | None] = [None]
        branches = [(p, s) for p in names or any_one for s in states or any_one]
        if 1 < len(branches) <= _MAX_BRANCHES and limit is not None:
            # One newest-first index scan per pipeline and state, merged: with ``IN (...)``
            # both SQLite and PostgreSQL collect every matching run and sort them all.
            parts = []
            for p, s in branches:
                part = stmt if p is None else stmt.where(_r.pipeline == p)
                part = part if s is None else part.where(_r.state == s)
                parts.append(select(part.order_by(_r.id.desc()).limit(limit).subquery()))
            merged = union_all(*parts).subquery()
            stmt = select(merged).order_by(merged.c.id.desc()).limit(limit)
        else:
            stmt = of_pipelines(stmt, _r.pipeline, names)
            if states is not None:
                stmt = stmt.where(_r.state.in_(states))
            stmt = stmt.order_by(_r.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [rows.run_from_row(r) for r in conn.execute(stmt)]

    def run_last_event_id(self, run_id: str) -> int:
        """The id of the run's newest event (0 if none): where a live view starts from."""
        stmt = select(func.max(events.c.id)).where(events.c.run_id == run_id)
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def recent_runs(
        self, pipelines: Sequence[str], per_pipeline: int
    ) -> dict[str, list[RunRecord]]:
        """The newest ``per_pipeline`` runs of each pipeline, newest first."""
        out: dict[str, list[RunRecord]] = {}
        with self._engine.connect() as conn:
            for name in pipelines:
                stmt = (
                    select(runs)
                    .where(_r.pipeline == name)
                    .order_by(_r.id.desc())
                    .limit(per_pipeline)
                )
                out[name] = [rows.run_from_row(r) for r in conn.execute(stmt)]
        return out

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

    def active_counts(self) -> dict[tuple[str, str], int]:
        """How many runs are queued and running now, by (pipeline, state).

        Read through the index on (state, ...): its cost follows the runs in those two
        states, never the history of finished ones (a metrics scrape asks for it).
        """
        active = (RunState.QUEUED.value, RunState.RUNNING.value)
        stmt = (
            select(_c.pipeline, _c.state, func.count())
            .where(_c.state.in_(active))
            .group_by(_c.pipeline, _c.state)
        )
        with self._engine.connect() as conn:
            return {(p, str(s)): int(n) for p, s, n in conn.execute(stmt)}

    def mark_task(
        self,
        run_id: str,
        task_key: str,
        new: TaskState,
        now: datetime,
        message: str,
        judge: MarkJudge,
    ) -> RunRecord:
        """Mark a task of a finished run as ``new``; the run takes the state ``judge`` gives.

        ``judge`` (the domain's rule, ``legato.domain.states.judge_mark``) sees the run and
        its tasks as they are inside the transaction, so no other writer slips in between;
        whatever it raises (InvalidTransition) leaves everything unchanged. Raises NotFound
        for an unknown run or task.
        """
        with self._write.connect() as conn, conn.begin():
            sel = dialect.for_update(select(runs).where(_r.id == run_id), self._backend)
            found = conn.execute(sel).first()
            if found is None:
                raise NotFound(f"no run {run_id!r}")
            run = rows.run_from_row(found)
            tasks = {
                r.task_key: r
                for r in (
                    rows.task_run_from_row(x)
                    for x in conn.execute(select(task_runs).where(_t.run_id == run_id))
                )
            }
            row = tasks.get(task_key)
            if row is None:
                raise NotFound(f"run {run_id!r} has no task {task_key!r}")
            run_state = judge(run.state, {k: r.state for k, r in tasks.items()}, task_key, new)
            error = f"marked failed: {message}" if new == TaskState.FAILED else None
            conn.execute(
                update(task_runs)
                .where(_t.run_id == run_id, _t.task_key == task_key)
                .values(state=new.value, error=error, finished_at=row.finished_at or now)
            )
            batch = [NewEvent(run_id, task_key, "task_state", row.state, new, now, message)]
            if run_state != run.state:
                conn.execute(
                    update(runs)
                    .where(_r.id == run_id)
                    .values(
                        state=run_state.value,
                        error=None if run_state == RunState.SUCCEEDED else run.error or message,
                    )
                )
                batch.append(
                    NewEvent(run_id, None, "run_state", run.state, run_state, now, message)
                )
                write_state(conn, run, run_state, now)
            conn.execute(
                insert(events),
                [
                    {
                        "run_id": e.run_id,
                        "task_key": e.task_key,
                        "kind": e.kind,
                        "old_state": e.old_state,
                        "new_state": e.new_state,
                        "at": e.at,
                        "message": e.message,
                    }
                    for e in batch
                ],
            )
            # A mark that finishes the run raises its alerts like a driver's step would.
            write_run_facts(conn, [e for e in batch if e.kind == "run_state"])
            return rows.run_from_row(conn.execute(select(runs).where(_r.id == run_id)).one())
