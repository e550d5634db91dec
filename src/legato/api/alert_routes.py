"""Routes of alerts: recent alerts with their messages, rules, silences and test messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from legato.api.http_errors import ERRORS
from legato.services.door import Door


class DeliveryOut(BaseModel):
    """One message of an alert to one channel."""

    channel: str
    kind: str
    state: str
    attempts: int
    next_try_at: datetime
    sent_at: datetime | None
    last_error: str | None


class AlertOut(BaseModel):
    """An alert: a rule's condition holding for a subject (a run, a partition...)."""

    id: int
    rule: str
    subject: str
    condition: str
    state: str
    pipeline: str | None
    run_id: str | None
    title: str
    opened_at: datetime
    resolved_at: datetime | None
    silenced: bool
    deliveries: list[DeliveryOut]


class RuleOut(BaseModel):
    """An alert rule as configured."""

    name: str
    condition: str
    channels: list[str]
    pipelines: list[str]
    tags: list[str]
    severity: str
    group_interval_seconds: float
    parameters: dict[str, str]


class SilenceIn(BaseModel):
    """How long to silence a rule: ``30m``, ``2h``, ``1d``."""

    duration: str = Field(alias="for", min_length=1, max_length=40)


class SilenceOut(BaseModel):
    """A rule silenced until ``until``."""

    rule: str
    until: datetime
    by: str
    at: datetime


class UnsilenceOut(BaseModel):
    """Whether a silence was ended."""

    rule: str
    ended: bool


class SentOut(BaseModel):
    """How a test message to one channel went (``error`` null: it arrived)."""

    channel: str
    error: str | None


def _alert(view: Any) -> AlertOut:
    a = view.alert
    return AlertOut(
        id=a.id, rule=a.rule, subject=a.subject, condition=a.condition, state=a.state.value,
        pipeline=a.pipeline, run_id=a.run_id, title=a.title, opened_at=a.opened_at,
        resolved_at=a.resolved_at, silenced=a.silenced,
        deliveries=[
            DeliveryOut(
                channel=d.channel, kind=d.kind, state=d.state.value, attempts=d.attempts,
                next_try_at=d.next_try_at, sent_at=d.sent_at, last_error=d.last_error,
            )
            for d in view.deliveries
        ],
    )


def router(ctx: Door) -> APIRouter:
    """The /alerts routes over ``ctx``."""
    r = APIRouter(responses=ERRORS, tags=["alerts"])

    @r.get("/alerts", response_model=list[AlertOut])
    def list_alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[AlertOut]:
        """Recent alerts, newest first, with the state of their messages."""
        return [_alert(v) for v in ctx.alerts.recent(limit)]

    @r.get("/alerts/rules", response_model=list[RuleOut])
    def list_rules() -> list[RuleOut]:
        """Every alert rule: legato.toml's and those declared on pipelines."""
        return [
            RuleOut(
                name=x.name, condition=x.condition, channels=list(x.channels),
                pipelines=list(x.pipelines), tags=list(x.tags), severity=x.severity,
                group_interval_seconds=x.group_interval.total_seconds(),
                parameters=x.parameters(),
            )
            for x in ctx.alerts.rules()
        ]

    @r.get("/alerts/silences", response_model=list[SilenceOut])
    def list_silences() -> list[SilenceOut]:
        """Silences in force."""
        return [_silence(s) for s in ctx.alerts.silences()]

    @r.post("/alerts/rules/{rule}/silence", response_model=SilenceOut)
    def silence(rule: str, body: SilenceIn) -> SilenceOut:
        """Silence a rule for a while: its alerts are recorded, not sent."""
        return _silence(ctx.alerts.silence(rule, body.duration))

    @r.post("/alerts/rules/{rule}/unsilence", response_model=UnsilenceOut)
    def unsilence(rule: str) -> UnsilenceOut:
        """End a rule's silence (``ended`` false: it had none)."""
        return UnsilenceOut(rule=rule, ended=ctx.alerts.unsilence(rule))

    @r.post("/alerts/rules/{rule}/test", response_model=list[SentOut])
    def test(rule: str) -> list[SentOut]:
        """Send a test message through the rule's channels now; how each went."""
        return [SentOut(channel=s.channel, error=s.error) for s in ctx.alerts.test(rule)]

    return r


def _silence(s: Any) -> SilenceOut:
    return SilenceOut(rule=s.rule, until=s.until, by=s.by, at=s.at)
