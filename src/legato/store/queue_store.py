"""The queue of runs waiting to start: its order, moving a run in it, and running counts.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import (
    func,
    or_,
    select,
    update,
)

from legato.domain.records import (
    NotFound,
    RunRecord,
)
from legato.domain.states import (
    RunState,
)
from legato.store import rows
from legato.store.database import Part, of_pipelines
from legato.store.schema import (
    runs,
)

_r = runs.c
_QUEUED = RunState.QUEUED.value
_RUNNING = RunState.RUNNING.value





class QueueStore(Part):
    """The queue of runs waiting to start."""

    def queued_runs(
        self,
        *,
        limit: int | None = None,
        skip_pipelines: Collection[str] = (),
        skip_backfills: Collection[str] = (),
        pipelines: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Queued runs in the order they should start: priority, then queue position.

        ``skip_*`` leave out runs that cannot start now (a pipeline at its limit, a paused
        backfill), so that they do not hide the startable ones behind ``limit``;
        ``pipelines`` keeps runs of those pipelines only (None: of any).
        """
        stmt = (
            of_pipelines(select(runs), _r.pipeline, pipelines)
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
