"""The audit trail under ``/api/v1/audit``: who did what, when, from where, how it ended;
and the check of its hash chain. Admins only (``audit.read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from legato.api.http_errors import ERRORS
from legato.api.run_routes import QueryTime, utc_time
from legato.api.schemas import Record
from legato.services.door import Door


class AuditEntryOut(Record):
    seq: int
    at: datetime
    actor: str
    auth: str
    source: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    hash: str


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None  # pass as ``before`` for the page after this one


class AuditCheckOut(BaseModel):
    intact: bool
    first_broken: int | None  # the seq of the first row altered or removed


def router(ctx: Door) -> APIRouter:
    """The /audit routes over ``ctx``."""
    r = APIRouter(responses=ERRORS, tags=["audit"])

    @r.get("/audit", response_model=AuditPageOut, summary="The audit trail")
    def audit(
        actor: Annotated[str | None, Query(max_length=500)] = None,
        action: Annotated[str | None, Query(max_length=200)] = None,
        since: QueryTime = None,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> AuditPageOut:
        """Rows newest first, filtered by actor (``user:NAME``, ``http:token:NAME``...),
        action (``runs.cancel``, ``auth.signin``...) and time; ``before`` pages back."""
        rows = ctx.audit.entries(
            actor=actor,
            action=action,
            since=utc_time(since, "since"),
            before_seq=before,
            limit=limit,
        )
        last = rows[-1].seq if len(rows) == limit else None
        return AuditPageOut(entries=[AuditEntryOut.of(x) for x in rows], next_before=last)

    @r.get("/audit/verify", response_model=AuditCheckOut, summary="Check the audit trail")
    def verify() -> AuditCheckOut:
        """Whether every row is as written: each holds the hash of the one before."""
        broken = ctx.audit.verify()
        return AuditCheckOut(intact=broken is None, first_broken=broken)

    return r
