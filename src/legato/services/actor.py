"""Who is acting: every service call carries an ``Actor``.

Front ends say who they act for (the local user of the CLI, a signed-in user or an API token
on the HTTP API and web UI, the scheduler itself); the services hand that to the gate
(``legato.services.gate``), the one place where permissions are checked and commands are
recorded in the audit trail.

The HTTP app's services act for *whoever sent the request being served*
(:meth:`Actor.per_request`): the sign-in middleware binds the request's actor with
:func:`acting_as` for the time of the request, and outside any request that actor is
:data:`NOBODY`, who may do nothing. A route that forgot to authenticate is refused, not let in.
"""

from __future__ import annotations

import getpass
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase

from legato.security.roles import EVERYTHING, NOTHING, Permissions

#: A scope entry naming a pipeline tag rather than a name pattern.
TAG_PREFIX = "tag:"


class ActorKind(StrEnum):
    """Where a request comes from."""

    USER = "user"  # a person at the CLI on this machine
    HTTP = "http"  # a client of the REST API or a browser on the web UI
    SCHEDULER = "scheduler"  # the daemon: schedules, triggers, backfills, driving runs
    HOOK = "hook"  # a webhook caller, proven by its trigger's token
    REQUEST = "request"  # stands for whoever sent the HTTP request being served


@dataclass(frozen=True, slots=True)
class Actor:
    """A principal: its kind, a name (a login, a token, a lease owner), what it may do, and
    how it proved who it is (``auth``: ``local``, ``password``, ``session``, ``token``,
    ``oidc``, ``saml``, ``link``, ``hook``) and from where (``source``: a client address)."""

    kind: ActorKind
    name: str
    permissions: Permissions = field(default=NOTHING, compare=False)
    role: str | None = None
    auth: str = "local"
    source: str | None = None
    #: Pipelines this actor may see and act on (name patterns, ``tag:T``); empty: all.
    scope: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def may(self, action: str) -> bool:
        """Whether this actor's permissions allow ``action``."""
        return self.permissions.allows(action)

    def sees(self, pipeline: str, tags: Collection[str] = ()) -> bool:
        """Whether this actor's scope covers the pipeline ``pipeline`` tagged ``tags``: a
        name pattern (``finance_*``, matched case-sensitively) or a ``tag:T`` among them.
        Every pipeline when the scope is empty."""
        if not self.scope:
            return True
        for pattern in self.scope:
            if pattern.startswith(TAG_PREFIX):
                if pattern[len(TAG_PREFIX) :] in tags:
                    return True
            elif fnmatchcase(pipeline, pattern):
                return True
        return False

    @classmethod
    def local_user(cls) -> Actor:
        """The person running the ``legato`` command on this machine: trusted as an admin,
        file permissions on the project's store being the boundary (docs/security.md)."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's numeric uid)
            name = "unknown"
        return cls(ActorKind.USER, name, EVERYTHING, role="admin")

    @classmethod
    def http_client(
        cls,
        name: str = "anonymous",
        *,
        permissions: Permissions = NOTHING,
        role: str | None = None,
        auth: str = "none",
        source: str | None = None,
        scope: tuple[str, ...] = (),
    ) -> Actor:
        """A client of the API or the web UI (``anonymous``, who may do nothing, until it
        signs in)."""
        return cls(ActorKind.HTTP, name, permissions, role, auth, source, scope)

    @classmethod
    def scheduler(cls, owner: str) -> Actor:
        """The daemon ``owner`` (its lease owner name) acting on its own."""
        return cls(ActorKind.SCHEDULER, owner, EVERYTHING, role="admin", auth="process")

    @classmethod
    def per_request(cls) -> Actor:
        """Whoever sent the HTTP request being served (see the module's docstring)."""
        return _PER_REQUEST


NOBODY = Actor(ActorKind.HTTP, "anonymous", NOTHING, auth="none")
_PER_REQUEST = Actor(ActorKind.REQUEST, "request", NOTHING, auth="none")
_current: ContextVar[Actor] = ContextVar("legato_request_actor", default=NOBODY)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Bind the actor of the request being served (in this context and its threads)."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def resolve(actor: Actor) -> Actor:
    """``actor`` itself, or for :meth:`Actor.per_request` the actor of the current request."""
    return _current.get() if actor.kind is ActorKind.REQUEST else actor
