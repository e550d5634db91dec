"""The project's resources as people see them, and their health check.

``describe`` lists each ``[resources.NAME]`` of the environment with its kind, its settings
as written (``${secret:...}`` references shown, a password written in plain masked), the pool
it takes and the tasks that ask for it. ``check`` opens each in this process, runs its kind's
``check()`` and closes it again: a secret its settings reference is read as a task reads it,
appended to the audit trail as ``secrets.read`` with the person checking as actor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.security.keyring import SealError
from legato.services.actor import Actor
from legato.services.gate import Service, action, actor_entry
from legato.services.secrets_service import key_ring

if TYPE_CHECKING:
    from legato.services.workspace import Workspace

#: The audit trail's action for a secret read while checking a resource (as a task's read).
_READ = "secrets.read"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """A declared resource: ``settings`` as written, secrets masked; ``tasks`` that ask for
    it by parameter, as ``pipeline.node``."""

    name: str
    kind: str
    settings: dict[str, Any]
    pool: str | None
    tasks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How checking one resource went: ``detail`` says what was checked, or why it failed."""

    name: str
    kind: str
    ok: bool
    detail: str
    seconds: float


class ResourcesService(Service):
    """Listing and checking the resources of the project's environment."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    @action("resources.read")
    def describe(self) -> list[ResourceInfo]:
        """Every declared resource, by name, with the tasks of the visible pipelines using it."""
        from legato.resources.kind import ResourceError
        from legato.resources.opened import kind_of
        from legato.resources.settings import masked_settings

        users: dict[str, list[str]] = {}
        for pipe in self._sight().visible():
            for node in pipe.graph.nodes.values():
                for _param, res in node.resources:
                    users.setdefault(res, []).append(f"{pipe.name}.{node.id}")
        out = []
        for name, table in sorted(self.ws.config.resource_tables.items()):
            try:
                secret_keys = set(kind_of(name, table).secret_keys)
            except ResourceError:
                secret_keys = set()
            shown = {k: v for k, v in table.items() if k not in ("kind", "pool")}
            pool = table.get("pool")
            out.append(
                ResourceInfo(
                    name=name,
                    kind=str(table.get("kind", "")),
                    settings=masked_settings(shown, secret_keys),
                    pool=pool if isinstance(pool, str) else None,
                    tasks=tuple(sorted(users.get(name, ()))),
                )
            )
        return out

    @action("resources.check", command=True)
    def check(self, names: list[str] | None = None) -> list[CheckResult]:
        """Open each resource (or those ``names``), run its kind's check and close it; a
        resource that fails says why, in one line with its secrets masked."""
        from legato.services.service_errors import NotFoundError

        tables = self.ws.config.resource_tables
        _ = self.ws.project  # a kind may be a class of the project's code: import it first
        wanted = sorted(tables) if not names else list(names)
        unknown = [n for n in wanted if n not in tables]
        if unknown:
            known = ", ".join(sorted(tables)) or "none"
            raise NotFoundError(f"no resource named {unknown[0]!r} (resources: {known})", "name")
        return [self._check_one(name, tables[name]) for name in wanted]

    def _check_one(self, name: str, table: dict[str, Any]) -> CheckResult:
        from legato.resources.opened import kind_of, rooted
        from legato.resources.settings import resolve
        from legato.security.masking import Masker

        table = rooted(table, str(self.ws.config.root))
        started = time.monotonic()
        read: list[str] = []
        kind_name = str(table.get("kind", ""))
        try:
            cls = kind_of(name, table)
            resolved = resolve(name, table, secret=lambda secret: self._secret(secret, read))
            kind = cls(name, resolved.settings)
            client = kind.open()
            try:
                detail, ok = kind.check(client), True
            finally:
                kind.close(client)
        except Exception as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            detail, ok = Masker.of(read).mask_cut(f"{type(exc).__name__}: {text}"[:500]), False
        return CheckResult(name, kind_name, ok, detail, round(time.monotonic() - started, 3))

    def _secret(self, name: str, read: list[str]) -> str:
        # As a task reads it (legato.executors.secret_access), with the person as reader.
        store = self.ws.store
        found = store.secrets.get_secret(name) if not name.startswith("@") else None
        if found is None:
            raise KeyError(
                f"no secret named {name!r} (an admin sets it: legato secrets set {name})"
            )
        ring = key_ring(self.ws)
        if ring is None:
            raise KeyError(f"secret {name!r} cannot be opened here: no key ring")
        try:
            value = ring.open(found.sealed, name).decode("utf-8", errors="replace")
        except SealError as exc:
            raise KeyError(f"secret {name!r}: {exc}") from None
        self.ws.audit(
            actor_entry(
                self.actor, _READ, name, "ok", {"for": "resources.check"}, self.ws.audit_time()
            )
        )
        read.append(value)
        return value


__all__ = ["CheckResult", "ResourceInfo", "ResourcesService"]
