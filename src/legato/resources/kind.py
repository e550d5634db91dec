"""What a resource kind is, and how a kind's name is found.

A kind is a small class: it is made from a resource's settings (``${secret:...}`` and
``${env:...}`` already resolved), checks them at once, and opens the client tasks get. One
client is opened per worker process and resource, on first use, and closed at shutdown.

    class Ftp(ResourceKind):
        kind = "ftp"
        settings_keys = {"host", "user", "password"}

        def open(self) -> ftplib.FTP:
            return ftplib.FTP(self.settings["host"], self.settings["user"], ...)

A package makes its kind known with an entry point in the ``legato.resources`` group
(``ftp = "mypkg.resources:Ftp"``); a project may also write ``kind = "mypkg.resources:Ftp"``.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BUILTIN_KINDS",
    "COMMON_KEYS",
    "ENTRY_POINT_GROUP",
    "ResourceError",
    "ResourceKind",
    "kind_class",
]

#: The entry point group through which packages add kinds.
ENTRY_POINT_GROUP = "legato.resources"

#: The kinds Legato ships, by name; each module is imported only when its kind is used.
BUILTIN_KINDS: dict[str, str] = {
    "sql": "legato.resources.sql:SqlResource",
    "http": "legato.resources.http:HttpResource",
    "files": "legato.resources.files:FilesResource",
    "duckdb": "legato.resources.duckdb:DuckDBResource",
    "redis": "legato.resources.redis:RedisResource",
    "amqp": "legato.resources.amqp:AmqpResource",
    "mqtt": "legato.resources.mqtt:MqttResource",
}


#: Settings every kind accepts besides its own: ``pool``, a pool whose slot the tasks using the
#: resource take (the engine reads it); ``root``, the folder relative paths in settings are
#: resolved against, set by whoever builds the kind to the project's folder (default: the
#: current directory).
COMMON_KEYS = frozenset({"pool", "root"})


class ResourceError(Exception):
    """A resource is declared wrongly, or cannot be opened or checked. The message says
    which resource and why."""


class ResourceKind(ABC):
    """How to open, check and close one kind of resource, from its settings.

    ``settings_keys`` lists the keys a kind accepts besides ``kind`` (None: any); an unknown
    key is an error that names the resource. Subclasses check values in ``validate``.
    """

    kind: ClassVar[str] = ""
    settings_keys: ClassVar[frozenset[str] | set[str] | None] = None
    #: Keys whose values are secret (masked wherever settings are shown).
    secret_keys: ClassVar[frozenset[str] | set[str]] = frozenset({"password", "token"})

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings: dict[str, Any] = {k: v for k, v in settings.items() if k != "kind"}
        if self.settings_keys is not None:
            unknown = sorted(set(self.settings) - set(self.settings_keys) - COMMON_KEYS)
            if unknown:
                known = ", ".join(sorted(self.settings_keys)) or "none"
                raise ResourceError(
                    f"resource {name!r} ({self.kind}): unknown setting {unknown[0]!r} "
                    f"(known: {known})"
                )
        self.validate()

    def validate(self) -> None:
        """Check the settings; raise ResourceError naming the resource when one is wrong.
        The base class checks nothing beyond ``settings_keys``."""
        return None

    def require(self, key: str, kind: type | tuple[type, ...] = str) -> Any:
        """The setting ``key``, which must be given and be of ``kind``."""
        if key not in self.settings:
            raise ResourceError(f"resource {self.name!r} ({self.kind}): {key!r} is required")
        return self.option(key, kind, None)

    def option(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        """The setting ``key`` if given (it must be of ``kind``), else ``default``."""
        value = self.settings.get(key, default)
        if value is default:
            return value
        bad_bool = isinstance(value, bool) and kind is not bool and bool not in _tuple(kind)
        if not isinstance(value, kind) or bad_bool:
            names = " or ".join(k.__name__ for k in _tuple(kind))
            raise ResourceError(
                f"resource {self.name!r} ({self.kind}): {key!r} must be a {names}, got {value!r}"
            )
        return value

    def project_path(self, path: str) -> str:
        """``path`` made absolute against the ``root`` setting (the project's folder), with
        ``~`` expanded; an absolute path is returned as it is."""
        expanded = os.path.expanduser(path)
        if os.path.isabs(expanded):
            return expanded
        return os.path.join(os.path.abspath(str(self.settings.get("root") or ".")), expanded)

    @abstractmethod
    def open(self) -> Any:
        """The client tasks are handed (an engine, a client, a filesystem...)."""

    def check(self, client: Any) -> str:
        """Prove the resource answers (a query, a request, a listing); a short line saying
        what was checked. Raises when it does not answer."""
        return "opened"

    def close(self, client: Any) -> None:
        """Release the client (its connections, sockets, files)."""
        closer = getattr(client, "close", None)
        if callable(closer):
            closer()


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def kind_class(kind: str) -> type[ResourceKind]:
    """The class of the kind named ``kind``: built in, from an entry point, or a
    ``"module:Class"`` path. Raises ResourceError when none is found."""
    target = BUILTIN_KINDS.get(kind)
    if target is None and ":" not in kind:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                target = ep.value
                break
    if target is None:
        if ":" not in kind:
            known = ", ".join(sorted(known_kinds()))
            raise ResourceError(
                f'no resource kind {kind!r} (known: {known}; or write "module:Class")'
            )
        target = kind
    module_name, _, attr = target.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ResourceError(f"resource kind {kind!r} cannot be loaded: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, ResourceKind)):
        raise ResourceError(f"resource kind {kind!r}: {target} is not a ResourceKind class")
    return found


def known_kinds() -> set[str]:
    """The names of the built-in kinds and of those added by installed packages."""
    from importlib.metadata import entry_points

    return set(BUILTIN_KINDS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
