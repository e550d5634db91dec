"""Alerts: the outbox of facts, alerts by (rule, subject), deliveries per channel, storm
windows and silences.

Facts are written by the other parts inside the transaction of the state change that raises
them (``write_run_facts`` from ``RunStore.apply`` and the cancel paths, ``write_fact`` from a
backfill's completion), so an alert is never lost to a crash between the two. The evaluator
reads and deletes them in one ``Evaluation`` (a write transaction that only one process holds
at a time: a PostgreSQL advisory lock it tries for, SQLite's one writer). Deliveries are
claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several schedulers send
each message once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Text,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from legato.domain.alert_records import (
    AlertFact,
    AlertRecord,
    AlertState,
    DeliveryRecord,
    DeliveryState,
    FactKind,
    SilenceRecord,
    WatchedRun,
)
from legato.domain.records import NewCheckResult, NewEvent
from legato.domain.states import RunState, TaskState
from legato.store import db, dialect, rows
from legato.store.asset_store import latest_of, present_partitions
from legato.store.database import Part
from legato.store.schema import (
    UTCDateTime,
    alert_deliveries,
    alert_facts,
    alert_silences,
    alert_windows,
    alerts,
    daemons,
    runs,
    task_runs,
)

_RUN_FACTS = {
    RunState.FAILED.value: FactKind.RUN_FAILED,
    RunState.SUCCEEDED.value: FactKind.RUN_SUCCEEDED,
    RunState.CANCELED.value: FactKind.RUN_CANCELED,
}
#: How many facts one evaluation takes at most (the rest wait for the next).
FACT_BATCH = 2000
_a = alerts.c
_d = alert_deliveries.c
_r = runs.c


def _fact_from_run(kind: FactKind, run_id: str, task_key: str | None, message: str | None,
                   at: datetime) -> Any:
    # The run's pipeline, partition and backfill are copied from its row by the statement.
    return insert(alert_facts).from_select(
        ["kind", "pipeline", "run_id", "task_key", "partition", "backfill_id", "message", "at"],
        select(
            literal(kind.value, String), _r.pipeline, _r.id, literal(task_key, String),
            _r.partition, _r.backfill_id, literal(message, Text), literal(at, UTCDateTime),
        ).where(_r.id == run_id),
    )


def _run_fact_kind(e: NewEvent) -> FactKind | None:
    if e.kind == "run_state" and e.new_state in _RUN_FACTS:
        return _RUN_FACTS[str(e.new_state)]
    if e.kind == "task_state" and e.new_state == TaskState.FAILED.value:
        return FactKind.TASK_FAILED
    return None


def run_fact_values(events: Sequence[NewEvent]) -> list[dict[str, Any]]:
    """The bind values of ``statements.INSERT_RUN_FACT`` for the facts ``events`` raise (the
    driver's step writes them through its prepared statements)."""
    out = []
    for e in events:
        kind = _run_fact_kind(e)
        if kind is not None:
            out.append({"f_kind": kind.value, "f_task_key": e.task_key, "f_message": e.message,
                        "f_at": e.at, "f_run_id": e.run_id})
    return out


def write_run_facts(conn: Connection, events: Sequence[NewEvent]) -> None:
    """Add the facts ``events`` raise (a run finished, a task failed for good) to the outbox,
    inside the caller's transaction. Cheap when none does: most steps raise nothing."""
    for e in events:
        kind = _run_fact_kind(e)
        if kind is not None:
            conn.execute(_fact_from_run(kind, e.run_id, e.task_key, e.message, e.at))


def write_fact(conn: Connection, kind: FactKind, pipeline: str, at: datetime, *,
               backfill_id: str | None = None, message: str | None = None) -> None:
    """Add one fact not tied to a run (a backfill finished) inside the caller's transaction."""
    conn.execute(
        insert(alert_facts).values(
            kind=kind.value, pipeline=pipeline, backfill_id=backfill_id, message=message, at=at
        )
    )


def write_check_facts(conn: Connection, results: Sequence[NewCheckResult]) -> None:
    """Add a fact per check result to the outbox, inside the caller's transaction (the one
    that records the results): a failure raises ``check_failed`` alerts, a pass resolves."""
    if results:
        conn.execute(insert(alert_facts), [
            {"kind": FactKind.CHECK_RESULT.value, "pipeline": r.pipeline, "run_id": r.run_id,
             "task_key": r.task_key, "partition": r.partition,
             "message": rows.to_json(check_fact_message(r)), "at": r.at}
            for r in results
        ])


def check_fact_message(r: NewCheckResult) -> dict[str, Any]:
    """What a check fact carries of its result (the failing sample cut to a few rows)."""
    return {
        "check": r.check_name, "asset": r.asset, "severity": r.severity, "outcome": r.outcome,
        "failed_count": r.failed_count, "total_count": r.total_count,
        "sample": list(r.sample[:CHECK_FACT_SAMPLE]), "message": r.message,
    }


#: Failing rows a check fact keeps (a message shows a few; the result keeps its ten).
CHECK_FACT_SAMPLE = 5


def _fact(row: Any) -> AlertFact:
    return AlertFact(row.id, FactKind(row.kind), *tuple(row)[2:])


def _alert(row: Any) -> AlertRecord:
    values = list(row)
    values[4] = AlertState(row.state)
    values[8] = rows.from_json(row.notice)
    values[11], values[12] = bool(row.notified), bool(row.silenced)
    return AlertRecord(*values)


def _delivery(row: Any) -> DeliveryRecord:
    values = list(row)
    values[5] = rows.from_json(row.notice)
    values[6] = DeliveryState(row.state)
    return DeliveryRecord(*values)


class Evaluation:
    """One evaluator's transaction: what it reads and writes is committed together."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- the outbox ---------------------------------------------------------------------

    def facts(self, limit: int = FACT_BATCH) -> list[AlertFact]:
        """The oldest facts not yet evaluated."""
        stmt = select(alert_facts).order_by(alert_facts.c.id).limit(limit)
        return [_fact(r) for r in self.conn.execute(stmt)]

    def consume(self, facts: Sequence[AlertFact]) -> None:
        """Remove evaluated facts (with the transaction: a crash evaluates them again)."""
        if facts:
            ids = [f.id for f in facts]
            self.conn.execute(delete(alert_facts).where(alert_facts.c.id.in_(ids)))

    # -- alerts -------------------------------------------------------------------------

    def open_alerts(
        self, *conditions: str, pipeline: str | None = None
    ) -> list[AlertRecord]:
        """Open alerts (of these conditions, of one pipeline), oldest first."""
        stmt = select(alerts).where(_a.state == AlertState.OPEN.value).order_by(_a.id)
        if conditions:
            stmt = stmt.where(_a.condition.in_(conditions))
        if pipeline is not None:
            stmt = stmt.where(_a.pipeline == pipeline)
        return [_alert(r) for r in self.conn.execute(stmt)]

    def find_open(self, rule: str, subject: str) -> AlertRecord | None:
        """The open alert of ``rule`` about ``subject``, if any."""
        stmt = select(alerts).where(
            _a.rule == rule, _a.subject == subject, _a.state == AlertState.OPEN.value
        )
        found = self.conn.execute(stmt).first()
        return None if found is None else _alert(found)

    def raised(self, rule: str, subject: str) -> bool:
        """Whether ``rule`` ever alerted about ``subject`` (open or not)."""
        stmt = select(_a.id).where(_a.rule == rule, _a.subject == subject).limit(1)
        return self.conn.execute(stmt).first() is not None

    def add_alert(self, *, rule: str, subject: str, condition: str, state: AlertState,
                  pipeline: str | None, run_id: str | None, title: str,
                  notice: dict[str, Any], now: datetime, notified: bool,
                  silenced: bool) -> int:
        """Record an alert; returns its id."""
        done = self.conn.execute(
            insert(alerts).values(
                rule=rule, subject=subject, condition=condition, state=state.value,
                pipeline=pipeline, run_id=run_id, title=title, notice=rows.to_json(notice),
                opened_at=now, resolved_at=now if state is AlertState.DONE else None,
                notified=notified, silenced=silenced,
            ).returning(_a.id)
        )
        return int(done.scalar_one())

    def resolve(self, alert_id: int, now: datetime) -> None:
        """Mark an open alert resolved."""
        self.conn.execute(
            update(alerts)
            .where(_a.id == alert_id, _a.state == AlertState.OPEN.value)
            .values(state=AlertState.RESOLVED.value, resolved_at=now)
        )

    def held(self, rule: str) -> list[AlertRecord]:
        """Alerts of ``rule`` waiting for its storm window to close, oldest first."""
        stmt = (
            select(alerts)
            .where(_a.rule == rule, _a.notified.is_(False), _a.silenced.is_(False))
            .order_by(_a.id)
        )
        return [_alert(r) for r in self.conn.execute(stmt)]

    def mark_notified(self, ids: Sequence[int]) -> None:
        """Record that these alerts' triggers went out (alone or in a group)."""
        if ids:
            self.conn.execute(update(alerts).where(_a.id.in_(list(ids))).values(notified=True))

    # -- deliveries, windows, silences --------------------------------------------------

    def add_delivery(self, *, rule: str, channel: str, kind: str, notice: dict[str, Any],
                     now: datetime, alert_id: int | None = None) -> None:
        """Queue one message to one channel, due now."""
        self.conn.execute(insert(alert_deliveries).values(_delivery_values(
            rule=rule, channel=channel, kind=kind, notice=notice, now=now, alert_id=alert_id
        )))

    def windows(self) -> dict[str, datetime]:
        """Each rule's open storm window: until when its alerts are held."""
        return {r.rule: r.until for r in self.conn.execute(select(alert_windows))}

    def set_window(self, rule: str, until: datetime | None) -> None:
        """Open (or move) ``rule``'s storm window to ``until``; None closes it."""
        self.conn.execute(delete(alert_windows).where(alert_windows.c.rule == rule))
        if until is not None:
            self.conn.execute(insert(alert_windows).values(rule=rule, until=until))

    def silenced(self, now: datetime) -> set[str]:
        """Rules silenced at ``now``."""
        s = alert_silences.c
        return set(self.conn.execute(select(s.rule).where(s.until > now)).scalars())

    # -- what the conditions look at ----------------------------------------------------

    def previous_finished(self, pipeline: str, run_id: str) -> str | None:
        """The state of the pipeline's last run finished (not canceled) before ``run_id``."""
        stmt = (
            select(_r.state)
            .where(
                _r.pipeline == pipeline,
                _r.id != run_id,
                _r.state.in_([RunState.FAILED.value, RunState.SUCCEEDED.value]),
                _r.finished_at <= select(_r.finished_at).where(_r.id == run_id).scalar_subquery(),
            )
            .order_by(_r.finished_at.desc(), _r.id.desc())
            .limit(1)
        )
        return self.conn.execute(stmt).scalar_one_or_none()

    def unfinished_runs(self) -> list[WatchedRun]:
        """Queued and running runs, with their last task progress."""
        t = task_runs.c
        progress = (
            select(t.run_id, func.max(func.coalesce(t.finished_at, t.started_at)).label("at"))
            .where(t.run_id.in_(select(_r.id).where(_r.state == RunState.RUNNING.value)))
            .group_by(t.run_id)
            .subquery()
        )
        stmt = (
            select(_r.id, _r.pipeline, _r.state, _r.partition, _r.run_key, _r.created_at,
                   _r.started_at, progress.c.at)
            .outerjoin(progress, progress.c.run_id == _r.id)
            .where(_r.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]))
            .order_by(_r.id)
        )
        out = []
        for row in self.conn.execute(stmt):
            at = row.at
            if isinstance(at, str):  # SQLite's MAX over timestamps comes back as text
                at = datetime.fromisoformat(at)
            if at is not None and at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            out.append(
                WatchedRun(row.id, row.pipeline, row.state, row.partition, row.run_key,
                           row.created_at, row.started_at, at)
            )
        return out

    def run_states(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The state of each of these runs (those that exist)."""
        if not run_ids:
            return {}
        stmt = select(_r.id, _r.state).where(_r.id.in_(list(run_ids)))
        return {i: s for i, s in self.conn.execute(stmt)}

    def succeeded_partitions(self, pipeline: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have a succeeded run of ``pipeline``."""
        if not keys:
            return set()
        stmt = select(_r.partition).where(
            _r.pipeline == pipeline,
            _r.partition.in_(list(keys)),
            _r.state == RunState.SUCCEEDED.value,
        ).distinct()
        return set(self.conn.execute(stmt).scalars())

    def _backend(self) -> db.Backend:
        return "postgresql" if self.conn.dialect.name == "postgresql" else "sqlite"

    def newest_materialized(self, assets: Collection[str]) -> dict[str, datetime]:
        """When each of ``assets`` that was ever materialized was last."""
        found = latest_of(self.conn, self._backend(), assets, brief=True)
        return {k: m.at for k, m in found.items()}

    def materialized_partitions(
        self, wanted: Mapping[str, Collection[str]]
    ) -> set[tuple[str, str]]:
        """Which of the ``wanted`` partitions (by asset) have a materialization."""
        found = present_partitions(self.conn, self._backend(), wanted)
        return {(a, p) for a, p, _ in found}

    def schedulers_alive_since(self, since: datetime) -> int:
        """How many driving daemons (``up``, ``scheduler``) beat at or after ``since``."""
        c = daemons.c
        stmt = select(func.count()).where(
            c.kind.in_(["up", "scheduler"]), c.heartbeat_at >= since
        )
        return int(self.conn.execute(stmt).scalar_one())


def _delivery_values(*, rule: str, channel: str, kind: str, notice: dict[str, Any],
                     now: datetime, alert_id: int | None) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "rule": rule, "channel": channel, "kind": kind,
        "notice": rows.to_json(notice), "state": DeliveryState.PENDING.value, "attempts": 0,
        "next_try_at": now, "created_at": now,
    }


class AlertStore(Part):
    """The outbox, alerts, deliveries and silences."""

    @contextmanager
    def evaluation(self) -> Iterator[Evaluation | None]:
        """A transaction for one evaluation, or None while another process evaluates."""
        with self._write.begin() as conn:
            if dialect.has_row_locks(self._backend):
                got = conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtext('legato:alerts'))")
                ).scalar_one()
                if not got:
                    yield None
                    return
            yield Evaluation(conn)

    def add_delivery(self, *, rule: str, channel: str, kind: str, notice: dict[str, Any],
                     now: datetime) -> int:
        """Queue one message outside an evaluation (a test message); returns its id."""
        with self._write.begin() as conn:
            values = _delivery_values(rule=rule, channel=channel, kind=kind, notice=notice,
                                      now=now, alert_id=None)
            return int(conn.execute(
                insert(alert_deliveries).values(values).returning(_d.id)
            ).scalar_one())

    def claim_deliveries(self, owner: str, now: datetime, lease: timedelta,
                         limit: int = 50) -> list[DeliveryRecord]:
        """Take due deliveries for ``owner`` until ``now + lease``: pending ones whose time
        has come, and ones being sent by a process whose lease ran out."""
        due = or_(
            and_(_d.state == DeliveryState.PENDING.value, _d.next_try_at <= now),
            and_(_d.state == DeliveryState.SENDING.value, _d.lease_until < now),
        )
        pick = dialect.for_update(
            select(_d.id).where(due).order_by(_d.id).limit(limit), self._backend,
            skip_locked=True,
        )
        with self._write.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                update(alert_deliveries)
                .where(_d.id.in_(ids))
                .values(state=DeliveryState.SENDING.value, lease_owner=owner,
                        lease_until=now + lease, attempts=_d.attempts + 1)
            )
            found = conn.execute(select(alert_deliveries).where(_d.id.in_(ids)).order_by(_d.id))
            return [_delivery(r) for r in found]

    def finish_delivery(self, delivery_id: int, owner: str, now: datetime, *,
                        error: str | None = None, retry_at: datetime | None = None) -> bool:
        """Record how a claimed delivery went: sent (no ``error``), to be tried again at
        ``retry_at``, or failed for good. False when ``owner`` no longer holds it."""
        if error is None:
            values: dict[str, Any] = {"state": DeliveryState.SENT.value, "sent_at": now,
                                      "last_error": None}
        elif retry_at is not None:
            values = {"state": DeliveryState.PENDING.value, "next_try_at": retry_at,
                      "last_error": error[:2000]}
        else:
            values = {"state": DeliveryState.FAILED.value, "last_error": error[:2000]}
        values.update(lease_owner=None, lease_until=None)
        with self._write.begin() as conn:
            done = conn.execute(
                update(alert_deliveries)
                .where(_d.id == delivery_id, _d.lease_owner == owner,
                       _d.state == DeliveryState.SENDING.value)
                .values(values)
            )
            return done.rowcount == 1

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due (None: none is pending)."""
        stmt = select(func.min(_d.next_try_at)).where(_d.state == DeliveryState.PENDING.value)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def get_delivery(self, delivery_id: int) -> DeliveryRecord:
        """One delivery by id."""
        with self._engine.connect() as conn:
            return _delivery(
                conn.execute(select(alert_deliveries).where(_d.id == delivery_id)).one()
            )

    def list_alerts(
        self,
        limit: int = 50,
        *,
        pipelines: Sequence[str] | None = None,
        state: AlertState | None = None,
        conditions: Sequence[str] = (),
        since: datetime | None = None,
    ) -> list[AlertRecord]:
        """The most recent alerts, newest first: of these pipelines (and those of none), in
        ``state``, of these conditions, opened at ``since`` or later."""
        stmt = select(alerts).order_by(_a.id.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(_a.state == state.value)
        if conditions:
            stmt = stmt.where(_a.condition.in_(list(conditions)))
        if since is not None:
            stmt = stmt.where(_a.opened_at >= since)
        if pipelines is not None:
            stmt = stmt.where(or_(_a.pipeline.is_(None), _a.pipeline.in_(list(pipelines))))
        with self._engine.connect() as conn:
            return [_alert(r) for r in conn.execute(stmt)]

    def deliveries_of(self, alert_ids: Sequence[int]) -> list[DeliveryRecord]:
        """The deliveries of these alerts, oldest first."""
        if not alert_ids:
            return []
        stmt = select(alert_deliveries).where(_d.alert_id.in_(list(alert_ids))).order_by(_d.id)
        with self._engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt)]

    def recent_deliveries(self, limit: int = 50) -> list[DeliveryRecord]:
        """The most recent deliveries (of every kind), newest first."""
        stmt = select(alert_deliveries).order_by(_d.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt)]

    def prune(self, before: datetime) -> int:
        """Forget alerts that ended before ``before`` (resolved or one-off) with their
        messages, finished messages of no alert (groups, tests), and ended silences;
        returns how many alerts went."""
        ended = [AlertState.RESOLVED.value, AlertState.DONE.value]
        finished = [DeliveryState.SENT.value, DeliveryState.FAILED.value]
        old = select(_a.id).where(_a.state.in_(ended), _a.resolved_at < before)
        with self._write.begin() as conn:
            conn.execute(delete(alert_deliveries).where(_d.alert_id.in_(old)))
            conn.execute(
                delete(alert_deliveries).where(
                    _d.alert_id.is_(None), _d.state.in_(finished), _d.created_at < before
                )
            )
            gone = conn.execute(delete(alerts).where(_a.id.in_(old)))
            conn.execute(delete(alert_silences).where(alert_silences.c.until < before))
            return int(gone.rowcount)

    def silence(self, rule: str, until: datetime, by: str, now: datetime) -> SilenceRecord:
        """Silence ``rule`` until ``until`` (replacing a silence it had)."""
        s = alert_silences.c
        with self._write.begin() as conn:
            conn.execute(delete(alert_silences).where(s.rule == rule))
            conn.execute(insert(alert_silences).values(rule=rule, until=until, by=by, at=now))
        return SilenceRecord(rule, until, by, now)

    def unsilence(self, rule: str) -> bool:
        """End ``rule``'s silence; False when it had none."""
        with self._write.begin() as conn:
            done = conn.execute(delete(alert_silences).where(alert_silences.c.rule == rule))
            return done.rowcount == 1

    def silences(self, now: datetime) -> list[SilenceRecord]:
        """Silences in force at ``now``, ending soonest first."""
        s = alert_silences.c
        stmt = select(alert_silences).where(s.until > now).order_by(s.until)
        with self._engine.connect() as conn:
            return [SilenceRecord(*r) for r in conn.execute(stmt)]
