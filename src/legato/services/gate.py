"""The gate every service call passes: one place for permissions and the record of commands.

Each public method of a service is declared with ``@action(name)`` (a read) or
``@action(name, command=True)`` (a change). Calling it first calls ``Gate.enter`` with the
service's actor: that is where permissions are checked, and where commands are written to
the ``legato.audit`` log. ``actions_of`` lists what a service declares, so a test can prove
that no public method skips the gate.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from legato.services.actor import Actor

audit_log = logging.getLogger("legato.audit")

F = TypeVar("F", bound=Callable[..., Any])

#: Set while an action runs, so the actions it calls in turn pass without a second check.
_inside: ContextVar[bool] = ContextVar("legato_inside_action", default=False)

#: The attribute that marks a method as a declared action (its name, whether it changes).
_MARK = "__legato_action__"


class Gate:
    """Lets an actor's calls through. Today every actor may do everything; commands are
    logged with who gave them. Sign-in and roles will replace ``check``."""

    def check(self, actor: Actor, action: str) -> None:
        """Raise when ``actor`` may not do ``action``; every actor may, for now."""

    def enter(self, actor: Actor, action: str, command: bool, args: tuple[Any, ...]) -> None:
        """Called before the service runs ``action`` for ``actor``."""
        self.check(actor, action)
        if command:
            shown = ", ".join(repr(a) for a in args)
            audit_log.info("%s: %s(%s)", actor, action, shown)


class Service:
    """A service acting for one actor; its public methods are ``@action`` s."""

    gate: Gate = Gate()

    def __init__(self, actor: Actor) -> None:
        self.actor = actor


def action(name: str, *, command: bool = False) -> Callable[[F], F]:
    """Declare a service method as the action ``name``; ``command`` when it changes things."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def call(self: Service, *args: Any, **kwargs: Any) -> Any:
            if _inside.get():  # an action calling another: the outer one was let in
                return fn(self, *args, **kwargs)
            self.gate.enter(self.actor, name, command, args)
            token = _inside.set(True)
            try:
                return fn(self, *args, **kwargs)
            except Exception as exc:
                full = _disk_full(self, exc)
                if full is None:
                    raise
                raise full from exc
            finally:
                _inside.reset(token)

        setattr(call, _MARK, (name, command))
        return cast(F, call)

    return wrap


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
