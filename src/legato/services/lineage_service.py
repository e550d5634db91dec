"""Lineage: sending the outbox's OpenLineage run events where ``[lineage]`` says.

Drivers write the events with the state changes they tell of (``legato.engine.lineage``);
``deliver(now)`` sends the due ones in order, per run, retrying a failure with exponential
backoff. The daemons call it from a thread of their own (``legato.daemon.lineage_thread``),
and ``legato run`` once its run ended. Several processes may deliver from one store: each
event is claimed by one of them (``legato.store.lineage_store``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.config import LineageSettings
from legato.observability.channels import DeliveryFailed
from legato.observability.lineage_transport import HttpEndpoint, append_line
from legato.services.actor import Actor
from legato.services.alerting import backoff
from legato.services.gate import Service, action
from legato.services.service_errors import NotFoundError

if TYPE_CHECKING:
    from legato.services.workspace import Workspace
    from legato.store.lineage_store import LineageRow

#: An event that failed this many times is given up (its error kept in the outbox).
MAX_TRIES = 12
#: How long a sender holds the events it claimed; another takes them over after that.
SEND_LEASE = timedelta(seconds=60)
#: How long sent events stay in the outbox.
KEEP_SENT = timedelta(days=7)


@dataclass(frozen=True)
class Delivered:
    """How one event went (``error`` None: it arrived)."""

    event_id: int
    run_id: str
    event_type: str
    error: str | None = None
    retry_at: datetime | None = None


class Lineage(Service):
    """The lineage outbox, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self._ws = ws

    @action("lineage.read")
    def settings(self) -> LineageSettings | None:
        """``[lineage]`` (None: lineage is off)."""
        return self._ws.config.lineage

    @action("lineage.read")
    def check(self) -> None:
        """ServiceError when ``[lineage]`` is set but the OpenLineage client is missing."""
        from legato.services.driving import check_lineage

        check_lineage(self._ws)

    @action("lineage.read")
    def events(self, run_id: str, limit: int = 100) -> list[LineageRow]:
        """The outbox's events of one run, oldest first, with their state."""
        self._sight().run(self._ws.store.runs.get_run(run_id), lambda: NotFoundError(
            f"no run with id {run_id!r}"))
        return self._ws.store.lineage.events(run_id, limit=limit)

    @action("lineage.deliver")
    def deliver(self, now: datetime, owner: str, *, limit: int = 100) -> list[Delivered]:
        """Send the events due at ``now`` (claimed for ``owner``), each run's in order, and
        record each outcome. Nothing when ``[lineage]`` is not set."""
        return deliver_due(self._ws, now, owner, limit=limit)

    @action("lineage.deliver")
    def next_due(self) -> datetime | None:
        """When the earliest pending event is due (None: none is)."""
        return self._ws.store.lineage.next_due()

    @action("lineage.deliver")
    def prune(self, now: datetime) -> int:
        """Forget events sent (or given up) more than ``KEEP_SENT`` before ``now``."""
        return self._ws.store.lineage.prune(now - KEEP_SENT)



def deliver_due(ws: Workspace, now: datetime, owner: str, *, limit: int = 100) -> list[Delivered]:
    """Send the lineage events due at ``now`` (claimed for ``owner``), each run's in order:
    one that fails holds back the rest of its run until it is tried again. Each outcome is
    recorded: a retryable failure is tried again after a backoff, others fail for good."""
    from legato.store.lineage_store import Outcome

    settings = ws.config.lineage
    if settings is None:
        return []
    store = ws.store.lineage
    claimed = store.claim(owner, now, SEND_LEASE, limit)
    if not claimed:
        return []
    done: list[Delivered] = []
    held: dict[str, datetime] = {}  # run -> when its failed event is tried again
    back: dict[datetime, list[int]] = {}  # events not tried, by when they are due again
    outcomes: list[Outcome] = []
    send = _Sender(ws, settings)
    # Past half the lease the rest go back: a slow server must not let the lease run out
    # under events still to be sent, which another sender would then send too.
    deadline = now + SEND_LEASE / 2
    try:
        for row in claimed:
            if row.run_id in held:
                back.setdefault(held[row.run_id], []).append(row.id)
                continue
            if ws.clock() > deadline:
                back.setdefault(now, []).append(row.id)
                continue
            error, retryable = send(row)
            after = ws.clock()
            retry_at = None
            if error is not None and retryable and row.tries < MAX_TRIES:
                retry_at = after + backoff(row.tries)
                held[row.run_id] = retry_at
            outcomes.append(Outcome(row.id, error, retry_at))
            done.append(Delivered(row.id, row.run_id, row.event_type, error, retry_at))
    finally:
        send.close()
        # One transaction for the batch: a crash before it sends these again (at least once).
        store.finish_all(owner, outcomes)
    for due, ids in back.items():
        store.put_back(ids, owner, due)
    return done


class _Sender:
    """Sends events through one transport, opened for one batch."""

    def __init__(self, ws: Workspace, settings: LineageSettings) -> None:
        self._ws = ws
        self._settings = settings
        self._http: HttpEndpoint | DeliveryFailed | None = None

    def __call__(self, row: LineageRow) -> tuple[str | None, bool]:
        """(None, _) when the event arrived; else the error and whether to try again."""
        try:
            if self._settings.transport == "file":
                assert self._settings.path is not None  # the config checked it
                append_line(self._settings.path, row.body)
            else:
                if self._http is None:  # secrets read once per batch, not per event
                    try:
                        self._http = _endpoint(self._ws, self._settings)
                    except DeliveryFailed as exc:
                        self._http = exc
                if isinstance(self._http, DeliveryFailed):
                    raise self._http
                self._http.send(row.body)
        except DeliveryFailed as exc:
            return str(exc), exc.retryable
        except Exception as exc:  # a bug must not stop the sender
            return f"{type(exc).__name__}: {exc}", True
        return None, False

    def close(self) -> None:
        if isinstance(self._http, HttpEndpoint):
            self._http.close()



def _endpoint(ws: Workspace, settings: LineageSettings) -> HttpEndpoint:
    from legato.resources.kind import ResourceError
    from legato.resources.settings import resolve

    table: dict[str, object] = {"headers": dict(settings.headers)}
    if settings.api_key is not None:
        table["api_key"] = settings.api_key
    try:
        found = resolve("lineage", table, secret=lambda name: _secret(ws, name)).settings
    except ResourceError as exc:
        raise DeliveryFailed(f"[lineage]: {exc}", retryable=False) from None
    headers = dict(found["headers"])
    if found.get("api_key"):
        headers["Authorization"] = f"Bearer {found['api_key']}"
    assert settings.url is not None  # the config checked it
    return HttpEndpoint(settings.url, settings.endpoint, headers, settings.timeout)


def _secret(ws: Workspace, name: str) -> str:
    from legato.services.secrets_service import key_ring

    found = ws.store.secrets.get_secret(name)
    ring = key_ring(ws)
    if found is None or ring is None:
        raise KeyError(f"no secret named {name!r} (an admin sets it: legato secrets set {name})")
    return ring.open(found.sealed, name).decode()
