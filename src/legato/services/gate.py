"""The gate every service call passes: one place for permissions and the audit trail.

Each public method of a service is declared with ``@action(name)`` (a read) or
``@action(name, command=True)`` (a change). Calling it first calls ``Gate.check`` with the
service's actor: an actor whose permissions (``legato.security.roles``) do not cover the
action is refused with ``Forbidden`` before anything happens. Every command, and every
refusal, is then appended to the audit trail with who, how they signed in, from where, the
target and the outcome. ``actions_of`` lists what a service declares, so a test can prove
that no public method skips the gate.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from legato.security.audit import AuditEntry
from legato.services.actor import Actor, ActorKind, resolve
from legato.services.service_errors import Forbidden

if TYPE_CHECKING:
    from legato.services.scope import Sight
    from legato.services.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger("legato.audit")

#: Set while an action runs, so the actions it calls in turn pass without a second check.
_inside: ContextVar[bool] = ContextVar("legato_inside_action", default=False)

#: The attribute that marks a method as a declared action (its name, whether it changes).
_MARK = "__legato_action__"

#: How much of an action's arguments the audit trail keeps.
_DETAIL_CHARS = 2000


class AuditSink(Protocol):
    """Where the gate appends what it lets through and refuses (the workspace's store)."""

    def audit(self, entry: AuditEntry) -> None: ...

    def audit_time(self) -> Any: ...


class Gate:
    """Checks an actor's permission for each action, and records commands and refusals."""

    def check(self, actor: Actor, action: str) -> None:
        """Raise Forbidden when ``actor`` may not do ``action``."""
        if not actor.may(action):
            who = actor.name if actor.kind is not ActorKind.HTTP else f"{actor.name!r}"
            role = f" (role {actor.role})" if actor.role else ""
            raise Forbidden(f"{who}{role} is not allowed to {action}")

    def record(
        self,
        sink: AuditSink | None,
        actor: Actor,
        action: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        outcome: str,
        *,
        secret_args: bool = False,
        error: str | None = None,
    ) -> None:
        """Append one row to the audit trail (nothing without a store to write it to):
        ``outcome`` is ``ok``, ``refused`` or ``failed`` (with ``error``)."""
        if sink is None or actor.kind is ActorKind.SCHEDULER:
            # The daemon's own commands are automatic; each run records its origin already.
            return
        target = str(args[0]) if args and isinstance(args[0], str) else ""
        detail: dict[str, Any] = {}
        if not secret_args:
            shown = [repr(a) for a in args[1 if target else 0 :]]
            shown += [f"{k}={v!r}" for k, v in kwargs.items()]
            if shown:
                detail["args"] = ", ".join(shown)[:_DETAIL_CHARS]
        if error is not None and not secret_args:
            detail["error"] = error[:_DETAIL_CHARS]
        sink.audit(actor_entry(actor, action, target[:500], outcome, detail, sink.audit_time()))


def actor_entry(
    actor: Actor, action: str, target: str, outcome: str, detail: dict[str, Any], at: datetime
) -> AuditEntry:
    """An audit row of ``action`` by ``actor`` (who, how signed in, from where)."""
    return AuditEntry(
        at=at,
        actor=str(actor),
        auth=actor.auth,
        source=actor.source or "",
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
    )


class Service:
    """A service acting for one actor; its public methods are ``@action`` s."""

    gate: Gate = Gate()

    def __init__(self, actor: Actor) -> None:
        self._actor = actor

    @property
    def actor(self) -> Actor:
        """Who this service acts for (for the HTTP app: the sender of the current request)."""
        return resolve(self._actor)

    def _for_audit(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments of a call as the audit trail may keep them: a service taking values
        that must not be kept (a pipeline's secret params) hides them here."""
        return args, kwargs

    def _audit_sink(self) -> AuditSink | None:
        ws = getattr(self, "ws", None) or getattr(self, "_ws", None)
        return cast("AuditSink | None", ws)

    def _sight(self) -> Sight:
        """What this service's actor sees of the workspace's pipelines: every service
        resolves pipelines, runs and backfills through it (``legato.services.scope``)."""
        from legato.services.scope import Sight

        ws = getattr(self, "ws", None) or getattr(self, "_ws", None)
        return Sight(cast("Workspace", ws), self.actor)


def action(name: str, *, command: bool = False, secret_args: bool = False) -> Callable[[F], F]:
    """Declare a service method as the action ``name``; ``command`` when it changes things,
    ``secret_args`` when its arguments must stay out of the audit trail (a secret's value)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def call(self: Service, *args: Any, **kwargs: Any) -> Any:
            if _inside.get():  # an action calling another: the outer one was let in
                return fn(self, *args, **kwargs)
            actor = self.actor
            gate = self.gate
            try:
                gate.check(actor, name)
            except Forbidden:
                _record_beside(
                    self, actor, name, args, kwargs, "refused", secret_args=secret_args
                )
                raise
            token = _inside.set(True)
            try:
                result = fn(self, *args, **kwargs)
            except Exception as exc:
                if command:
                    _record_beside(
                        self, actor, name, args, kwargs, "failed",
                        secret_args=secret_args, error=f"{type(exc).__name__}: {exc}",
                    )
                full = _disk_full(self, exc)
                if full is None:
                    raise
                raise full from exc
            finally:
                _inside.reset(token)
            if command:
                shown, named = self._for_audit(args, kwargs)
                try:
                    gate.record(
                        self._audit_sink(), actor, name, shown, named, "ok",
                        secret_args=secret_args,
                    )
                except Exception as exc:  # done, but not recorded: say so, as any write
                    full = _disk_full(self, exc)
                    if full is None:
                        raise
                    raise full from exc
            return result

        setattr(call, _MARK, (name, command))
        return cast(F, call)

    return wrap


def _record_beside(
    service: Service,
    actor: Actor,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    outcome: str,
    **more: Any,
) -> None:
    """Record a refusal or a failure; when the audit trail cannot be written either (a full
    disk, the store gone), log why and let the caller's own error be the one reported."""
    try:
        service.gate.record(
            service._audit_sink(), actor, name, *service._for_audit(args, kwargs), outcome,
            **more,
        )
    except Exception:  # the store's own failure, which the caller's error already reports
        _log.debug("could not record %s of %s by %s in the audit trail", outcome, name,
                   actor, exc_info=True)  # fmt: skip


def _disk_full(service: Service, exc: Exception) -> Exception | None:
    # A full disk under the store surfaces wherever a write happens to be: said once here,
    # for every action, in one line naming the store's volume (what is full, what to free).
    from legato.domain.records import StoreFull

    if isinstance(exc, StoreFull):
        return None
    ws = getattr(service, "ws", None) or getattr(service, "_ws", None)
    url = getattr(getattr(ws, "config", None), "database_url", None)
    if not isinstance(url, str):
        return None
    from legato.services.service_errors import store_full

    return store_full(exc, url)


def actions_of(cls: type) -> dict[str, tuple[str, bool] | None]:
    """Each public method of ``cls`` with its declared (action, command), or None if it has
    none."""
    out: dict[str, tuple[str, bool] | None] = {}
    for attr in dir(cls):
        if attr.startswith("_"):
            continue
        value = getattr(cls, attr)
        if callable(value) and not isinstance(value, type):
            out[attr] = getattr(value, _MARK, None)
    return out


