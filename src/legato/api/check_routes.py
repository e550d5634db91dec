"""``GET /api/v1/checks``: data-quality check results with their history, newest first
(``runs.read``: a viewer reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from legato.api.http_errors import ERRORS
from legato.services.door import Door

if TYPE_CHECKING:
    from legato.domain.records import CheckResultRecord


class CheckResultOut(BaseModel):
    id: int
    check: str
    asset: str | None
    pipeline: str
    run_id: str
    task: str
    partition: str | None
    severity: str  # warn | block
    outcome: str  # passed | failed | error
    failed_count: int | None  # None for checks of the whole data (row count, schema...)
    total_count: int | None
    sample: list[dict[str, Any]]  # up to ten failing rows
    message: str
    at: datetime

    @classmethod
    def of(cls, record: CheckResultRecord) -> CheckResultOut:
        r = record.result
        return cls(
            id=record.id, check=r.check_name, asset=r.asset, pipeline=r.pipeline,
            run_id=r.run_id, task=r.task_key, partition=r.partition, severity=r.severity,
            outcome=r.outcome, failed_count=r.failed_count, total_count=r.total_count,
            sample=[dict(row) for row in r.sample], message=r.message, at=r.at,
        )


def router(ctx: Door) -> APIRouter:
    """The /checks route over ``ctx``."""
    r = APIRouter(responses=ERRORS, tags=["checks"])

    @r.get("/checks", response_model=list[CheckResultOut], summary="Check results")
    def checks(
        asset: Annotated[str | None, Query(max_length=500)] = None,
        run: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[CheckResultOut]:
        """Data-quality check results newest first, of one asset and/or one run (its id or
        a unique prefix) when given: outcome, failing rows' count and a sample of them."""
        found = ctx.checks.results(asset=asset, run_id=run, limit=limit)
        return [CheckResultOut.of(c) for c in found]

    return r
