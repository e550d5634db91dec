"""Alerts: rules and channels read from the project, evaluation, delivery, silences, tests.

``evaluate(now)`` turns the outbox's facts and the time-based conditions into alerts and
queued messages (``legato.services.alert_evaluation``); ``deliver(now)`` sends the due
messages through their channels, retrying a failure with exponential backoff. Both are
called by the daemons (``legato up``, ``legato scheduler``, ``legato web``) from a thread of
their own, so a slow receiver never delays a schedule tick. Several processes may call them
on one PostgreSQL store: one evaluates at a time, and each message is claimed by one sender.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from legato.domain.alert_records import AlertRecord, AlertState, DeliveryRecord, SilenceRecord
from legato.observability.alert_rules import (
    AlertConfigError,
    AlertRule,
    check_channels,
    parse_duration,
    parse_rules,
)
from legato.observability.channels import (
    Channel,
    ChannelConfigError,
    DeliveryFailed,
    Notice,
    Reveal,
    SecretRef,
    parse_channels,
)
from legato.services.actor import Actor
from legato.services.alert_evaluation import Evaluator, Outcome, notice_from_json
from legato.services.gate import Service, action
from legato.services.service_errors import BadRequest, NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.services.workspace import Workspace

#: A failed delivery is tried again after 2 s, 4 s, 8 s... at most this long apart...
MAX_BACKOFF = timedelta(minutes=5)
FIRST_BACKOFF = timedelta(seconds=2)
#: ... and given up after this many tries.
MAX_ATTEMPTS = 12
#: How long a sender holds a delivery it claimed; another takes it over after that.
SEND_LEASE = timedelta(seconds=60)
#: How long alerts that ended (and their messages) stay in the history.
KEEP_HISTORY = timedelta(days=30)


@dataclass(frozen=True)
class AlertView:
    """An alert with the state of its messages, for listings."""

    alert: AlertRecord
    deliveries: tuple[DeliveryRecord, ...]


@dataclass(frozen=True)
class Sent:
    """How one message to one channel went (``error`` None: it arrived)."""

    channel: str
    kind: str
    title: str
    error: str | None = None
    retry_at: datetime | None = None


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed try."""
    return min(FIRST_BACKOFF * (2 ** max(0, attempts - 1)), MAX_BACKOFF)


class _Setup:
    """The rules and channels of one load of the project."""

    def __init__(self, rules: dict[str, AlertRule], channels: dict[str, Channel]) -> None:
        self.rules = rules
        self.channels = channels


# One setup per workspace and code load: reading the tables once, not per evaluation.
_setups: weakref.WeakKeyDictionary[Workspace, tuple[int, _Setup]] = weakref.WeakKeyDictionary()
_setups_lock = threading.Lock()


def _reveal(ws: Workspace) -> Reveal:
    def reveal(ref: SecretRef) -> str:
        if ref.kind == "env":
            return os.environ[ref.name]
        from legato.services.secrets_service import key_ring

        found = ws.store.secrets.get_secret(ref.name)
        ring = key_ring(ws)
        if found is None or ring is None:
            raise KeyError(ref.name)
        return ring.open(found.sealed, ref.name).decode()

    return reveal


def load_setup(ws: Workspace) -> _Setup:
    """The project's channels and rules (legato.toml's and its pipelines'); ServiceError
    naming the mistake when one is wrong (an unknown channel name, a bad duration...)."""
    with _setups_lock:
        cached = _setups.get(ws)
        if cached is not None and cached[0] == ws.loads:
            return cached[1]
    config = ws.config
    try:
        channels = parse_channels(config.channel_tables, _reveal(ws), base=config.root)
        rules = parse_rules(config.alert_tables, channels)
        for pipe in ws.project.pipelines.values():
            for rule in pipe.alerts:
                check_channels(rule, channels, f"pipeline {pipe.name} alert {rule.name}")
                if rule.name in rules:
                    raise AlertConfigError(f"two alert rules are named {rule.name!r}")
                rules[rule.name] = rule
    except (AlertConfigError, ChannelConfigError) as exc:
        raise ServiceError(f"legato.toml: {exc}", "alerts") from None
    setup = _Setup(rules, channels)
    with _setups_lock:
        _setups[ws] = (ws.loads, setup)
    return setup


class Alerts(Service):
    """Alert rules, their alerts and messages, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self._ws = ws

    def _setup(self) -> _Setup:
        return load_setup(self._ws)

    @action("alerts.read")
    def rules(self) -> list[AlertRule]:
        """Every rule, by name; ServiceError when the configuration is wrong."""
        return [r for _, r in sorted(self._setup().rules.items())]

    @action("alerts.read")
    def base_url(self, own_url: str | None = None) -> str | None:
        """Where run links point: ``[web] public_url``, else ``own_url`` (the daemon's)."""
        return self._ws.config.public_url or own_url

    @action("alerts.evaluate")
    def evaluate(
        self,
        now: datetime,
        *,
        own_url: str | None = None,
        watching_since: datetime | None = None,
    ) -> Outcome | None:
        """Turn new facts and time-based conditions into alerts and queued messages as of
        ``now``; None when another process is evaluating (it will have done the same)."""
        setup = self._setup()
        evaluator = Evaluator(
            setup.rules,
            self._ws.project.pipelines,
            self._ws.config.public_url or own_url or self._served_url(),
            watching_since=watching_since,
        )
        with self._ws.store.alerts.evaluation() as ev:
            if ev is None:
                return None
            return evaluator.run(ev, now)

    def _served_url(self) -> str | None:
        # A scheduler serves no pages: link to those of a `legato up` beating beside it.
        for daemon in self._ws.store.daemons.daemons():
            if daemon.url:
                return daemon.url
        return None

    @action("alerts.deliver")
    def deliver(self, now: datetime, owner: str, *, limit: int = 50) -> list[Sent]:
        """Send the messages due at ``now`` (claimed for ``owner``), and record each outcome:
        a retryable failure is tried again after a backoff, others fail for good."""
        setup = self._setup()
        store = self._ws.store.alerts
        done: list[Sent] = []
        for d in store.claim_deliveries(owner, now, SEND_LEASE, limit):
            notice = notice_from_json(d.notice)
            error, retryable = self._send(setup.channels.get(d.channel), d.channel, notice)
            after = self._ws.clock()  # the send took time
            retry_at = None
            if error is not None and retryable and d.attempts < MAX_ATTEMPTS:
                retry_at = after + backoff(d.attempts)
            store.finish_delivery(d.id, owner, after, error=error, retry_at=retry_at)
            done.append(Sent(d.channel, d.kind, notice.title, error, retry_at))
        return done

    @staticmethod
    def _send(channel: Channel | None, name: str, notice: Notice) -> tuple[str | None, bool]:
        """(None, _) when the message arrived; else the error and whether to try again."""
        if channel is None:
            return f"no channel named {name!r}", False
        try:
            channel.send(notice)
        except DeliveryFailed as exc:
            return str(exc), exc.retryable
        except Exception as exc:  # a channel's own bug must not stop the sender
            return f"{type(exc).__name__}: {exc}", True
        return None, False

    @action("alerts.deliver")
    def prune(self, now: datetime) -> int:
        """Forget alerts that ended more than ``KEEP_HISTORY`` before ``now``, with their
        messages; how many went."""
        return self._ws.store.alerts.prune(now - KEEP_HISTORY)

    @action("alerts.deliver")
    def next_due(self) -> datetime | None:
        """When the earliest queued message is due (None: nothing is queued)."""
        return self._ws.store.alerts.next_due()

    @action("alerts.read")
    def recent(self, limit: int = 50) -> list[AlertView]:
        """The latest alerts the actor may see, newest first, with their messages."""
        found = self._ws.store.alerts.list_alerts(limit, pipelines=self._seen())
        by_alert: dict[int, list[DeliveryRecord]] = {}
        for d in self._ws.store.alerts.deliveries_of([a.id for a in found]):
            by_alert.setdefault(d.alert_id or 0, []).append(d)
        return [AlertView(a, tuple(by_alert.get(a.id, ()))) for a in found]

    @action("alerts.read")
    def open_alerts(self, limit: int = 20) -> list[AlertRecord]:
        """Alerts whose condition still holds, newest first (the overview's list)."""
        return self._ws.store.alerts.list_alerts(
            limit, pipelines=self._seen(), state=AlertState.OPEN
        )

    @action("alerts.read")
    def sla_misses(self, since: datetime, limit: int = 20) -> list[AlertRecord]:
        """SLA alerts raised at ``since`` or later, open or resolved, newest first."""
        return self._ws.store.alerts.list_alerts(
            limit, pipelines=self._seen(), conditions=("sla",), since=since
        )

    def _seen(self) -> list[str] | None:
        pipelines = self._sight().pipelines()
        return None if pipelines is None else sorted(pipelines)

    @action("alerts.read")
    def silences(self) -> list[SilenceRecord]:
        """Silences in force now."""
        return self._ws.store.alerts.silences(self._ws.clock())

    def _rule(self, name: str) -> AlertRule:
        rule = self._setup().rules.get(name)
        if rule is None:
            known = ", ".join(sorted(self._setup().rules)) or "none"
            raise NotFoundError(f"no alert rule named {name!r} (rules: {known})")
        return rule

    @action("alerts.manage", command=True)
    def silence(self, rule: str, duration: str) -> SilenceRecord:
        """Silence ``rule`` for ``duration`` (``2h``): its alerts are recorded, not sent."""
        self._rule(rule)
        try:
            length = parse_duration(duration, "--for")
        except AlertConfigError as exc:
            raise BadRequest(str(exc), "for") from None
        now = self._ws.clock()
        return self._ws.store.alerts.silence(rule, now + length, str(self.actor), now)

    @action("alerts.manage", command=True)
    def unsilence(self, rule: str) -> bool:
        """End ``rule``'s silence; False when it had none."""
        return self._ws.store.alerts.unsilence(rule)

    @action("alerts.manage", command=True)
    def test(self, rule: str, own_url: str | None = None) -> list[Sent]:
        """Send a test message through ``rule``'s channels now; how each went."""
        found = self._rule(rule)
        setup = self._setup()
        now = self._ws.clock()
        base = (self._ws.config.public_url or own_url or "").rstrip("/")
        notice = Notice(
            kind="test",
            rule=found.name,
            condition=found.condition,
            title=f"Test message of alert rule {found.name}",
            dedup_key=f"{found.name}:test:{now.astimezone(UTC).isoformat()}",
            at=now,
            severity=found.severity,
            url=f"{base}/alerts" if base else None,
            details=tuple(found.parameters().items()),
        )
        out = []
        for name in found.channels:
            error, _ = self._send(setup.channels.get(name), name, notice)
            out.append(Sent(name, "test", notice.title, error))
        return out
