"""Who is acting: every service call carries an ``Actor``.

Front ends say who they act for (the local user of the CLI, a client of the HTTP API or web
UI, the scheduler itself); the services hand that to the gate (``legato.services.gate``),
the one place where permissions are checked and commands are recorded.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    """Where a request comes from."""

    USER = "user"  # a person at the CLI on this machine
    HTTP = "http"  # a client of the REST API or a browser on the web UI
    SCHEDULER = "scheduler"  # the daemon: schedules, triggers, backfills, driving runs


@dataclass(frozen=True, slots=True)
class Actor:
    """A principal: its kind, a name (a login, a client, a lease owner), its roles."""

    kind: ActorKind
    name: str
    roles: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def local_user(cls) -> Actor:
        """The person running the ``legato`` command on this machine."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's numeric uid)
            name = "unknown"
        return cls(ActorKind.USER, name)

    @classmethod
    def http_client(cls, name: str = "anonymous") -> Actor:
        """A client of the API or the web UI (``anonymous`` until it signs in)."""
        return cls(ActorKind.HTTP, name)

    @classmethod
    def scheduler(cls, owner: str) -> Actor:
        """The daemon ``owner`` (its lease owner name) acting on its own."""
        return cls(ActorKind.SCHEDULER, owner)
