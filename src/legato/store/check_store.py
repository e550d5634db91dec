"""Data-quality check results: written with the step that ends the checked attempt, read
back per asset or per run, newest first.

``write_check_results`` is called by ``RunStore.apply`` inside the step's transaction, so a
task's success and the results of its checks are recorded together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from legato.domain.records import CheckResultRecord, NewCheckResult
from legato.store import rows
from legato.store.database import Part, of_pipelines
from legato.store.schema import check_results

_c = check_results.c


def write_check_results(conn: Connection, results: Sequence[NewCheckResult]) -> None:
    """Insert ``results`` inside the caller's transaction."""
    if results:
        conn.execute(insert(check_results), [
            {"check_name": r.check_name, "asset": r.asset, "pipeline": r.pipeline,
             "run_id": r.run_id, "task_key": r.task_key, "partition": r.partition,
             "severity": r.severity, "outcome": r.outcome, "failed_count": r.failed_count,
             "total_count": r.total_count, "sample": rows.to_json(list(r.sample)),
             "message": r.message, "at": r.at}
            for r in results
        ])


class CheckStore(Part):
    """Check results with their history."""

    def list(
        self,
        *,
        asset: str | None = None,
        run_id: str | None = None,
        pipelines: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[CheckResultRecord]:
        """Results newest first, of one asset and/or one run when given; ``pipelines``
        limits them to those pipelines (what the reader may see)."""
        query = select(check_results).order_by(_c.id.desc()).limit(limit)
        if asset is not None:
            query = query.where(_c.asset == asset)
        if run_id is not None:
            query = query.where(_c.run_id == run_id)
        query = of_pipelines(query, _c.pipeline, pipelines)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]


def _record(row: Row[Any]) -> CheckResultRecord:
    m = row._mapping
    return CheckResultRecord(
        id=m["id"],
        result=NewCheckResult(
            check_name=m["check_name"], asset=m["asset"], run_id=m["run_id"],
            pipeline=m["pipeline"], task_key=m["task_key"], partition=m["partition"],
            severity=m["severity"], outcome=m["outcome"], failed_count=m["failed_count"],
            total_count=m["total_count"],
            sample=tuple(rows.from_json(m["sample"])) if m["sample"] else (),
            message=m["message"] or "", at=m["at"],
        ),
    )
