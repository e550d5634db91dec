"""Resources opened once per process, on first use, and closed when the process ends its work.

``Declared`` is what a worker is told: the ``[resources.NAME]`` tables of the run's
environment as written (references unresolved) with a digest of each. The process keeps one
opened client per resource name and digest (``open_resource``): every task the process runs
gets that client, and a table that changed (another code location, another environment)
opens its own. ``close_all`` closes them, newest first, at the end of a worker process, a
thread-mode executor, a Dask worker.

A forked child (the local executor's zygote and workers) does not inherit its parent's
opened clients: their sockets belong to the parent, so the child forgets them without
closing them and opens its own.

``OpenResources`` is what one attempt (or one in-process test run) sees as
``ctx.resources``: the declared resources by name, plus objects given in place of opening
(``overrides``), and the secret values its resources were opened with, to mask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from legato.definitions.resource_param import Resources
from legato.resources.kind import ResourceError, ResourceKind, kind_class
from legato.resources.settings import resolve

__all__ = [
    "Declared",
    "OpenResources",
    "close_all",
    "kind_of",
    "open_resource",
    "opened_count",
    "overridden",
    "override",
    "overriding",
    "rooted",
]

log = logging.getLogger(__name__)


def _digest(table: Mapping[str, Any]) -> str:
    text = json.dumps(table, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Declared:
    """The resources of an environment: each ``[resources.NAME]`` table as written, and its
    digest (which the per-process cache is keyed by). Picklable: it travels with attempts."""

    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tables: Mapping[str, Mapping[str, Any]], root: str | None = None) -> Declared:
        """The declared resources of ``tables`` (legato.toml's ``[resources]``); ``root``,
        the project's folder, is what kinds resolve relative paths against."""
        copied = {name: rooted(table, root) for name, table in tables.items()}
        return cls(copied, {name: _digest(t) for name, t in copied.items()})

    def __bool__(self) -> bool:
        return bool(self.tables)


def rooted(table: Mapping[str, Any], root: str | None) -> dict[str, Any]:
    """A copy of ``table`` with the project folder as its ``root`` setting, unless it sets
    one: a relative path in it (a SQLite file, a files folder) is the project's, whatever
    folder the worker runs in."""
    copied = dict(table)
    if root is not None:
        copied.setdefault("root", root)
    return copied


def kind_of(name: str, table: Mapping[str, Any]) -> type[ResourceKind]:
    """The kind class ``table`` names; ResourceError naming the resource when it cannot."""
    kind = table.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ResourceError(f"resource {name!r}: 'kind' must name a resource kind, got {kind!r}")
    try:
        return kind_class(kind)
    except ResourceError as exc:
        raise ResourceError(f"resource {name!r}: {exc}") from None


@dataclass
class _Opened:
    kind: ResourceKind
    client: Any
    secret_values: frozenset[str]


# The clients this process opened, by (resource name, digest of its table), in opening order.
_opened: dict[tuple[str, str], _Opened] = {}
_opening: dict[tuple[str, str], threading.Lock] = {}
_lock = threading.Lock()


def _forget_inherited() -> None:
    # In a forked child: the parent's clients are the parent's (closing them here would
    # close its connections too). Their objects are dropped unclosed; new locks, since a
    # lock held by another thread of the parent at the fork would never be released here.
    global _lock
    _opened.clear()
    _opening.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited)


def open_resource(
    name: str,
    table: Mapping[str, Any],
    digest: str | None = None,
    *,
    secret: Callable[[str], str] | None = None,
) -> tuple[Any, frozenset[str]]:
    """The client of resource ``name`` in this process, opened now if it is not yet, and the
    secret values its settings hold. Thread-safe: two threads asking at once open it once.

    ResourceError when the table is wrong (an unknown kind or setting, a reference that
    cannot be resolved); whatever the kind's ``open()`` raises when it cannot connect.
    """
    key = (name, digest or _digest(table))
    with _lock:
        found = _opened.get(key)
        if found is not None:
            return found.client, found.secret_values
        gate = _opening.setdefault(key, threading.Lock())
    with gate:  # one opener per resource; others wait for it, not for every resource
        with _lock:
            found = _opened.get(key)
        if found is not None:
            return found.client, found.secret_values
        cls = kind_of(name, table)
        resolved = resolve(name, table, secret=secret)
        kind = cls(name, resolved.settings)
        client = kind.open()
        with _lock:
            _opened[key] = _Opened(kind, client, resolved.secret_values)
        return client, resolved.secret_values


def opened_count() -> int:
    """How many clients this process holds open."""
    with _lock:
        return len(_opened)


def close_all() -> list[str]:
    """Close every client this process opened, the newest first; the errors, one line each
    (a client that fails to close does not keep the others open)."""
    with _lock:
        items = list(_opened.items())
        _opened.clear()
        _opening.clear()
    errors = []
    for (name, _), opened in reversed(items):
        try:
            opened.kind.close(opened.client)
        except Exception as exc:
            errors.append(f"resource {name!r}: cannot close: {type(exc).__name__}: {exc}")
            log.warning("resource %r: cannot close it: %s", name, exc)
    return errors


# Objects handed out in place of resources of these names by every OpenResources made in
# this process without overrides of its own (in-process test runs: ``override``).
_overrides: dict[str, Any] = {}


def override(objects: Mapping[str, Any]) -> Callable[[], None]:
    """Hand ``objects`` in place of the resources of those names to the attempts run in this
    process from now on (thread mode, in-process tasks: an in-process test run), declared
    or not: the loader counts them as declared. Returns what undoes it (the names given go
    back to what they were). The objects are never closed here."""
    given = dict(objects)
    with _lock:
        before = {name: _overrides.get(name, _overrides) for name in given}
        _overrides.update(given)

    def undo() -> None:
        with _lock:
            for name, old in before.items():
                if old is _overrides:
                    _overrides.pop(name, None)
                else:
                    _overrides[name] = old

    return undo


@contextmanager
def overriding(objects: Mapping[str, Any]) -> Iterator[None]:
    """``override(objects)`` for the duration of a ``with`` block."""
    undo = override(objects)
    try:
        yield
    finally:
        undo()


def overridden() -> frozenset[str]:
    """The names of the resources overridden in this process (see ``override``)."""
    with _lock:
        return frozenset(_overrides)


class OpenResources(Resources):
    """The resources a task may use (``ctx.resources``), opened on first access.

    ``declared``: the environment's resources (``Declared`` or the tables themselves);
    ``secret``: how a ``${secret:NAME}`` is read (None: it cannot be); ``overrides``: objects
    given in place of opening, by resource name (in-process test runs), handed out as they
    are and never closed here; None: those of ``override`` in this process. Opened clients
    are the process's (``open_resource``).
    """

    def __init__(
        self,
        declared: Declared | Mapping[str, Mapping[str, Any]] | None = None,
        *,
        secret: Callable[[str], str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        if declared is None:
            declared = Declared()
        elif not isinstance(declared, Declared):
            declared = Declared.of(declared)
        self._declared = declared
        self._secret = secret
        if overrides is None:
            with _lock:
                overrides = dict(_overrides)
        self._overrides = MappingProxyType(dict(overrides))
        self._secret_values: set[str] = set()
        self._used: list[str] = []
        self._mine = threading.Lock()

    def __getitem__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        table = self._declared.tables.get(name)
        if table is None:
            known = ", ".join(sorted(self)) or "none"
            raise KeyError(f"no resource named {name!r} (resources: {known})")
        client, secrets = open_resource(
            name, table, self._declared.digests.get(name), secret=self._secret
        )
        with self._mine:
            self._secret_values.update(secrets)
            if name not in self._used:
                self._used.append(name)
        return client

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._declared.tables) | set(self._overrides)))

    def __len__(self) -> int:
        return len(set(self._declared.tables) | set(self._overrides))

    def __contains__(self, name: object) -> bool:
        return name in self._overrides or name in self._declared.tables

    def __repr__(self) -> str:
        return f"<resources {', '.join(self) or 'none'}>"

    @property
    def used(self) -> list[str]:
        """The names of the declared resources handed out so far, in order."""
        with self._mine:
            return list(self._used)

    def secret_values(self) -> frozenset[str]:
        """The secret values of the resources handed out so far (to mask in logs)."""
        with self._mine:
            return frozenset(self._secret_values)
