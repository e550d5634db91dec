"""What single sign-on hands back, and how an identity provider's groups become a role.

Shared by the OpenID Connect relying party (``oidc``) and the SAML service provider
(``saml``): both end in an ``Identity`` or a ``SignInRefused``, and both read the same
``role_map`` / ``default_role`` keys from their ``[auth.*]`` table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "BUILTIN_ROLES",
    "Identity",
    "SignInRefused",
    "SsoConfigError",
    "TomlTable",
    "choose_role",
    "join_url",
    "resolve_reference",
]

# Least to most powerful. A custom role ranks above viewer and below operator: it is usually a
# narrowed operator (e.g. "operates finance_* only"), never wider than the built-in roles above it.
BUILTIN_ROLES = ("viewer", "operator", "admin")
_RANK = {"viewer": 0, "operator": 2, "admin": 3}
_CUSTOM_RANK = 1


class SignInRefused(Exception):
    """A single sign-on attempt failed; ``reason`` is one line fit for the log and the user.

    It never carries token or assertion contents, only what went wrong.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SsoConfigError(ValueError):
    """An ``[auth.oidc]`` or ``[auth.saml]`` table cannot be used; the message says which key."""


#: Where a SAML identity provider posts its answer, and where Legato's metadata is served.
#: Here, not in ``saml``, so the web server's checks need not import pysaml2.
ACS_PATH = "/auth/saml/acs"
METADATA_PATH = "/auth/saml/metadata"
#: The sign-in page's button for each kind of provider unless its table has a ``label``.
DEFAULT_LABELS = {"oidc": "Sign in with single sign-on", "saml": "Sign in with SAML"}

@dataclass(frozen=True)
class Identity:
    """A person the identity provider vouched for, with the Legato role their groups give."""

    subject: str
    username: str
    email: str | None
    groups: tuple[str, ...]
    role: str
    provider: str


def choose_role(
    groups: Iterable[str], role_map: Mapping[str, str], default_role: str | None
) -> str | None:
    """The role of a member of ``groups``: the highest role their groups map to.

    Built-in roles rank viewer < operator < admin; a custom role ranks between viewer and
    operator, and between two custom roles the one mapped first in ``role_map`` wins. With no
    mapped group the role is ``default_role`` (None: no role, the sign-in is refused).
    """
    order = {role: i for i, role in enumerate(dict.fromkeys(role_map.values()))}
    mapped = {role_map[g] for g in groups if g in role_map}
    if not mapped:
        return default_role
    return max(mapped, key=lambda r: (_RANK.get(r, _CUSTOM_RANK), -order[r]))


class TomlTable:
    """An ``[auth.*]`` table being read: every error names the section and the key at fault.

    Keys it does not know are refused at once: a typo must not silently drop a setting.
    """

    def __init__(self, table: Mapping[str, Any], section: str, known: Iterable[str]) -> None:
        self.raw = table
        self.section = section
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise self.error(
                f"has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )

    def error(self, message: str) -> SsoConfigError:
        """An ``SsoConfigError`` about this table."""
        return SsoConfigError(f"[{self.section}] {message}")

    def text(self, key: str, default: str | None = None) -> str:
        """``key`` as a non-empty string (``default`` when absent; None: the key is needed)."""
        value = self.raw.get(key, default)
        if value is None:
            raise self.error(f'needs {key} = "..."')
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{key} must be a non-empty string")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        """``key`` as a non-empty string, or None when absent."""
        return None if self.raw.get(key) is None else self.text(key)

    def role_map(self) -> tuple[Mapping[str, str], str | None]:
        """``role_map`` (group = "role") and ``default_role``: at least one of them."""
        raw = self.raw.get("role_map", {})
        if not isinstance(raw, Mapping):
            raise self.error(
                'role_map must be a table of group = "role", e.g. '
                'role_map = { "legato-admins" = "admin" }'
            )
        role_map: dict[str, str] = {}
        for group, role in raw.items():
            if not isinstance(role, str) or not role.strip():
                raise self.error(f"role_map: group {group!r} needs a role name")
            role_map[str(group)] = role.strip()
        default = self.optional_text("default_role")
        if not role_map and default is None:
            raise self.error(
                "maps no group to a role and has no default_role: nobody could sign in"
            )
        return MappingProxyType(role_map), default


def join_url(base_url: str, path: str) -> str:
    """``base_url`` (the public address, maybe with a path prefix) followed by ``path``."""
    return base_url.rstrip("/") + path


_REFERENCE = re.compile(r"\$\{(env|secret):([^{}]*)\}")


def resolve_reference(
    value: str,
    where: str,
    *,
    env: Mapping[str, str],
    secret: Callable[[str], str] | None = None,
) -> str:
    """``value``, or what it names when it is a reference: ``${env:VAR}`` is the environment
    variable ``VAR``; ``${secret:NAME}`` the stored secret ``NAME``, read by ``secret``
    (None: secrets cannot be read here, and the reference is refused).

    ``where`` names the setting in errors (``[auth.oidc] client_secret``). A reference to
    nothing raises ``SsoConfigError``: an empty client secret would silently make a public
    client.
    """
    found = _REFERENCE.fullmatch(value.strip())
    if found is None:
        if "${" in value:
            raise SsoConfigError(f"{where}: write a reference as ${{env:VAR}} or ${{secret:NAME}}")
        return value
    kind, name = found.group(1), found.group(2).strip()
    if not name:
        raise SsoConfigError(f"{where}: ${{{kind}:...}} needs a name")
    if kind == "env":
        resolved = env.get(name, "")
        if not resolved:
            raise SsoConfigError(f"{where}: the environment variable {name} is not set")
        return resolved
    if secret is None:
        raise SsoConfigError(
            f"{where}: ${{secret:{name}}} needs the encrypted secrets store, which this "
            "Legato cannot read; use ${env:VAR}"
        )
    return secret(name)
