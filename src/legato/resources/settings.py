"""A resource's settings as written, and as a kind gets them: ``${secret:NAME}`` and
``${env:VAR}`` references resolved anywhere in a string value (a whole value or a part of
one, such as the password inside a URL), in nested tables and lists alike. ``$${`` stands for
a literal ``${``.

Secrets are read through the callable given (in a worker: the attempt's audited
``ctx.secrets``), environment variables from ``os.environ``. The values secrets gave are kept,
so that whatever shows text the resource touched (an attempt's log) can mask them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from legato.resources.kind import ResourceError

__all__ = [
    "RESERVED_KEYS",
    "Resolved",
    "masked_settings",
    "references",
    "resolve",
]

#: Keys of a ``[resources.NAME]`` table that are Legato's, not the kind's: ``kind`` names the
#: kind, ``pool`` the pool whose slot a task using the resource takes.
RESERVED_KEYS = frozenset({"kind", "pool"})

_REF = re.compile(r"\$\$\{|\$\{(secret|env):([^}]*)\}")
#: Keys whose written values are masked wherever settings are shown (besides a kind's own).
_SECRET_WORDS = ("password", "token", "secret", "api_key", "apikey", "credential", "private_key")
_MASK = "****"


@dataclass(frozen=True)
class Resolved:
    """A resource's settings with references resolved, and the values its secrets gave."""

    settings: dict[str, Any]
    secret_values: frozenset[str]


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def references(table: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(setting, "secret" | "env", name)`` for each reference in ``table``."""
    found = []
    for path, text in _walk(table, ""):
        for m in _REF.finditer(text):
            if m.group(1):
                found.append((path, m.group(1), m.group(2)))
    return found


def resolve(
    name: str,
    table: Mapping[str, Any],
    *,
    secret: Callable[[str], str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """The settings of resource ``name`` (its ``[resources.NAME]`` table but the reserved
    keys), each reference replaced by its value. A variable that is not set, a secret that
    cannot be read, or a reference of another sort is a ResourceError naming the resource
    and the setting."""
    environ = os.environ if env is None else env
    given: set[str] = set()

    def text(value: str, path: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            what, ref = m.group(1), m.group(2).strip()
            if not ref:
                raise ResourceError(
                    f"resource {name!r}: setting {path!r}: ${{{what}:}} names nothing"
                )
            if what == "env":
                if ref not in environ:
                    raise ResourceError(
                        f"resource {name!r}: setting {path!r}: environment variable {ref!r} "
                        "is not set"
                    )
                return environ[ref]
            if secret is None:
                raise ResourceError(
                    f"resource {name!r}: setting {path!r}: secret {ref!r} cannot be read here "
                    "(no secret store)"
                )
            try:
                value = secret(ref)
            except KeyError as exc:
                reason = exc.args[0] if exc.args else f"no secret named {ref!r}"
                raise ResourceError(f"resource {name!r}: setting {path!r}: {reason}") from None
            given.add(value)
            return value

        if "${" not in value:
            return value
        if re.search(r"\$\{(?!secret:|env:)", value.replace("$${", "")):
            raise ResourceError(
                f"resource {name!r}: setting {path!r}: only ${{secret:NAME}} and ${{env:VAR}} "
                "may be referenced (write $${ for a literal ${)"
            )
        return _REF.sub(one, value)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return text(value, path)
        if isinstance(value, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    settings = {k: walk(v, k) for k, v in table.items() if k not in RESERVED_KEYS}
    return Resolved(settings, frozenset(given))


def masked_settings(
    table: Mapping[str, Any], secret_keys: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """``table`` as people may see it: references are shown as written (they say where a
    value comes from, not what it is), while a value written in plain under a secret-sounding
    key (or one of ``secret_keys``) and a password inside a URL read ``****``."""

    def secretish(key: str) -> bool:
        low = key.lower()
        return key in secret_keys or any(word in low for word in _SECRET_WORDS)

    def show(value: Any, key: str) -> Any:
        if isinstance(value, Mapping):
            return {k: show(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [show(v, key) for v in value]
        if not isinstance(value, str):
            return value
        if secretish(key) and not _only_references(value):
            return _MASK
        return _url_password_masked(value)

    return {k: show(v, str(k)) for k, v in table.items()}


def _only_references(value: str) -> bool:
    return _REF.sub("", value).strip() == ""


def _url_password_masked(value: str) -> str:
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None or _only_references(parts.password):
        return value
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{_MASK}@{host}"))
