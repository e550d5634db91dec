"""Roles: what each may do, as sets of permissions, deny by default.

A permission is the name of a service action (``runs.read``, ``runs.cancel``...; every public
service method declares one, see ``legato.services.gate``). A role is a set of permission
patterns (``runs.*``, ``*.read``, ``*`` for all) and may include other roles by name.

Built-in roles:

``viewer``
    reads everything but secrets, users, tokens and the audit trail (metrics included:
    Prometheus scrapes with a viewer's token, or one of a role granting ``metrics.read``);
``operator``
    a viewer that also launches, cancels, re-runs, marks, backfills, pauses, moves the queue,
    silences and tests alert rules, and reads the settings in effect (secrets masked);
``admin``
    everything.

Custom roles come from legato.toml's ``[roles]`` table, one list per role::

    [roles]
    analyst = ["viewer", "runs.launch"]
    scheduler_admin = ["operator", "schedules.*", "triggers.*"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

ALL = "*"

#: Reads a viewer may make. Secrets, users, tokens and the audit trail are not among them.
VIEWER: frozenset[str] = frozenset(
    {
        "project.read",
        "pipelines.read",
        "partitions.read",
        "runs.read",
        "logs.read",
        "schedules.read",
        "triggers.read",
        "backfills.read",
        "queue.read",
        "health.read",
        "daemons.read",
        "schema.read",
        "alerts.read",
        "lineage.read",
        "metrics.read",
        "resources.read",
        "assets.read",
    }
)

#: What an operator may do beyond a viewer: act on runs and on what makes them.
OPERATOR: frozenset[str] = VIEWER | frozenset(
    {
        "runs.launch",
        "runs.create",
        "runs.trigger",
        "runs.rerun",
        "runs.cancel",
        "tasks.mark",
        "backfills.create",
        "backfills.change",
        "schedules.pause",
        "triggers.pause",
        "queue.move",
        "project.reload",
        "alerts.manage",
        "config.read",  # the settings in effect, secrets masked
        "resources.check",
    }
)

BUILT_IN: dict[str, frozenset[str]] = {
    "viewer": VIEWER,
    "operator": OPERATOR,
    "admin": frozenset({ALL}),
}

#: Built-in roles from least to most powerful: an identity provider's groups map to the highest.
RANKED = ("viewer", "operator", "admin")


class RoleError(ValueError):
    """A role that does not exist, or a ``[roles]`` table that cannot be read."""


@dataclass(frozen=True, slots=True)
class Permissions:
    """The permission patterns a principal holds; ``allows`` is the one check."""

    patterns: frozenset[str] = frozenset()

    def allows(self, action: str) -> bool:
        """Whether one of the patterns covers ``action`` (deny when none does)."""
        if action in self.patterns or ALL in self.patterns:
            return True
        return any(fnmatchcase(action, p) for p in self.patterns if "*" in p)

    @property
    def everything(self) -> bool:
        """Whether every action is allowed (the admin role, the local user, the daemon)."""
        return ALL in self.patterns


NOTHING = Permissions()
EVERYTHING = Permissions(frozenset({ALL}))


@dataclass(frozen=True, slots=True)
class Roles:
    """The built-in roles and a project's own, by name."""

    table: Mapping[str, frozenset[str]]

    @classmethod
    def parse(cls, custom: Mapping[str, Any] | None = None) -> Roles:
        """The built-in roles plus legato.toml's ``[roles]`` (RoleError when unusable)."""
        raw: dict[str, list[str]] = {}
        for name, entries in (custom or {}).items():
            if name in BUILT_IN:
                raise RoleError(f"[roles] {name}: a built-in role cannot be redefined")
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise RoleError(f"[roles] {name} must be a list of permissions and role names")
            raw[name] = entries
        table: dict[str, frozenset[str]] = dict(BUILT_IN)
        for name in raw:
            table[name] = frozenset(_expand(name, raw, ()))
        return cls(table)

    def names(self) -> tuple[str, ...]:
        """Every role's name, built-in ones first."""
        return tuple(self.table)

    def permissions(self, role: str) -> Permissions:
        """What ``role`` may do; RoleError when there is no such role."""
        try:
            return Permissions(self.table[role])
        except KeyError:
            raise RoleError(
                f"no role {role!r} (known: {', '.join(self.table)})"
            ) from None

    def check(self, role: str) -> str:
        """``role`` when it exists; RoleError otherwise."""
        self.permissions(role)
        return role

    def highest(self, roles: Iterable[str]) -> str | None:
        """The most powerful of ``roles``: built-in ones by rank, a custom one above a viewer
        and below an operator (it is known only by name). None when ``roles`` is empty."""

        def rank(role: str) -> float:
            return RANKED.index(role) if role in RANKED else 0.5

        known = [r for r in roles if r in self.table]
        return max(known, key=rank) if known else None


def _expand(name: str, raw: Mapping[str, list[str]], seen: tuple[str, ...]) -> set[str]:
    if name in seen:
        raise RoleError(f"[roles] {name} includes itself (through {' -> '.join(seen)})")
    out: set[str] = set()
    for entry in raw[name]:
        if entry in BUILT_IN:
            out |= BUILT_IN[entry]
        elif entry in raw:
            out |= _expand(entry, raw, (*seen, name))
        elif "." in entry or entry == ALL:
            out.add(entry)
        else:
            raise RoleError(
                f"[roles] {name}: {entry!r} is neither a role nor a permission "
                "(permissions look like runs.cancel or runs.*)"
            )
    return out
