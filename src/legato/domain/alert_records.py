"""Alerts as the store keeps them: facts in the outbox, alerts by rule and subject, their
deliveries per channel, and silences.

Field order equals the column order of each record's table (``legato.store.schema``), so a
row converts positionally. A notice is kept as its JSON (``Notice.as_json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class FactKind(StrEnum):
    """What happened, as written to the outbox with the state change itself."""

    RUN_FAILED = "run_failed"
    RUN_SUCCEEDED = "run_succeeded"
    RUN_CANCELED = "run_canceled"
    TASK_FAILED = "task_failed"  # for good: its retries used up
    BACKFILL_FINISHED = "backfill_finished"
    BACKFILL_FAILED = "backfill_failed"
    # A data-quality check's result (passed ones too: they resolve); ``message`` holds it as
    # JSON (``legato.store.alert_store.check_fact_message``).
    CHECK_RESULT = "check_result"


class AlertState(StrEnum):
    """``open`` until its condition clears (``resolved``); ``done`` for one-off events."""

    OPEN = "open"
    RESOLVED = "resolved"
    DONE = "done"


class DeliveryState(StrEnum):
    """A message to one channel: ``pending`` (due at ``next_try_at``), ``sending`` (claimed by
    a process until its lease ends), ``sent``, or ``failed`` for good."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AlertFact:
    """One fact in the outbox."""

    id: int
    kind: FactKind
    pipeline: str
    run_id: str | None
    task_key: str | None
    partition: str | None
    backfill_id: str | None
    message: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert: a rule's condition holding for a subject (a run, a partition...)."""

    id: int
    rule: str
    subject: str
    condition: str
    state: AlertState
    pipeline: str | None
    run_id: str | None
    title: str
    notice: dict[str, Any]
    opened_at: datetime
    resolved_at: datetime | None
    notified: bool
    silenced: bool


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One message to one channel, with its tries."""

    id: int
    alert_id: int | None
    rule: str
    channel: str
    kind: str
    notice: dict[str, Any]
    state: DeliveryState
    attempts: int
    next_try_at: datetime
    last_error: str | None
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """A rule silenced until ``until`` by ``by``: its alerts are recorded, not sent."""

    rule: str
    until: datetime
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class WatchedRun:
    """An unfinished run as the time-based conditions see it: ``progress_at`` is its last
    task start or finish (or its own start)."""

    id: str
    pipeline: str
    state: str
    partition: str | None
    run_key: str | None
    created_at: datetime
    started_at: datetime | None
    progress_at: datetime | None
