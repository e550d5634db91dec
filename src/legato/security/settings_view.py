"""A project's effective settings as legato.toml tables, for people to read, every secret
masked: what ``legato config`` prints.

The values are those Legato uses: the chosen environment's ``[env.NAME]`` laid over the
file, environment variables such as LEGATO_DATABASE_URL applied, defaults filled in.
Masked are passwords in URLs (``postgresql://u:****@h/db``, and ``password=`` in a URL's
query), and in the free-form tables (resources, alerts, channels, single sign-on) every value
under a key that names a secret (``password``, ``token``, ``secret``, ``key``...).
References are names, not values, and are shown as written: ``${secret:NAME}``, and a
channel's ``{ secret = "NAME" }`` or ``{ env = "VAR" }``. A resource's ``${env:VAR}`` is shown
resolved, as its resource will see it, masked where its key names a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from legato.config import ProjectConfig
from legato.security.masking import MASK

__all__ = ["REFERENCE", "effective_settings", "is_secret_key", "mask_url"]

#: A reference inside a resource's value: ``${secret:NAME}`` or ``${env:VAR}``.
REFERENCE = re.compile(r"\$\{(secret|env):([^}]*)\}")

#: Words of a key that make its value a secret (any part of ``client_secret``, ``api-key``...).
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "token", "secret", "key", "apikey", "credential",
     "credentials", "authorization", "passphrase", "cookie", "signature", "dsn"}
)  # fmt: skip
#: ... unless the key's last word says the value only points at one (``key_file``, ``token_url``).
_POINTERS = frozenset({"file", "path", "dir", "url", "uri", "endpoint", "name", "id", "env"})
_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "credential")
_WORDS = re.compile(r"[a-z0-9]+")
# scheme://user:PASSWORD@ - the password is what lies between the user's ':' and the '@'.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@/\s]*)@")


def is_secret_key(key: str) -> bool:
    """Whether a value under ``key`` is a secret, by the words of the key."""
    words = _WORDS.findall(re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower())
    if not words or words[-1] in _POINTERS:
        return False
    joined = "".join(words)
    return any(w in _SECRET_WORDS for w in words) or any(p in joined for p in _SECRET_PARTS)


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it masked, and the secret-named parameters
    of a URL's query (``?password=...``); a ``${secret:NAME}`` written as the password stays."""

    def password(m: re.Match[str]) -> str:
        pw = m.group("pw")
        kept = pw if not pw or (REFERENCE.fullmatch(pw) and pw.startswith("${secret:")) else MASK
        return f"{m.group('head')}{kept}@"

    text = _URL_PASSWORD.sub(password, text)
    if "://" in text and "?" in text:
        head, _, query = text.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(k) for k, _ in pairs):
            shown = [(k, MASK if is_secret_key(k) else v) for k, v in pairs]
            text = f"{head}?{urlencode(shown, safe='*${}:/')}"
    return text


def effective_settings(config: ProjectConfig, environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings of ``config`` as legato.toml's tables, secrets masked (None: not set).
    ``environ`` resolves the ``${env:VAR}`` references of resources."""
    auth = {k: v for k, v in asdict(config.auth).items()}
    return {
        "project": {"name": config.name, "modules": list(config.modules)},
        "store": {"url": mask_url(config.database_url)},
        "results": {"url": mask_url(config.results_url)},
        "logs": {"dir": str(config.logs_dir), "max_attempt_bytes": config.max_log_bytes},
        "executor": {
            "kind": config.executor,
            "workers": config.workers,
            "mode": config.mode,
            "memory_limit_mb": config.memory_limit_mb,
            "max_tasks_per_worker": config.max_tasks_per_worker,
            "max_worker_memory_mb": config.max_worker_memory_mb,
            "lease_seconds": config.lease_seconds,
            "address": None if config.dask_address is None else mask_url(config.dask_address),
        },
        "pools": dict(config.pools),
        "daemon": {"max_runs": config.max_runs, "host": config.web_host, "port": config.web_port},
        "retention": {"runs_seconds": config.keep_runs,
                      "failed_runs_seconds": config.keep_failed_runs,
                      "logs_seconds": config.keep_logs,
                      "results_seconds": config.keep_results},
        "limits": {
            "request_bytes": config.request_bytes,
            "params_bytes": config.params_bytes,
            "webhook_per_minute": config.webhook_per_minute,
        },
        "roles": dict(config.roles),
        "auth": {**auth, **_free(config.auth_tables, environ, resolve=False)},
        "web": {
            "tls_cert": _path(config.tls_cert),
            "tls_key": _path(config.tls_key),
            "public_url": config.public_url,
        },
        "secrets": {"key_file": _path(config.secret_key_file)},
        "alerts": _free(config.alert_tables, environ, resolve=False),
        "channels": _free(config.channel_tables, environ, resolve=False),
        "resources": _free(config.resource_tables, environ, resolve=True),
        "lineage": _lineage(config),
    }


def _lineage(config: ProjectConfig) -> dict[str, Any] | None:
    if config.lineage is None:
        return None
    table = {**asdict(config.lineage), "path": _path(config.lineage.path)}
    # api_key and headers as written: a reference names its secret, a plain key is masked.
    return {k: _shown(k, v, {}, False, False) for k, v in table.items()}


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _free(
    tables: Mapping[str, Any], environ: Mapping[str, str], *, resolve: bool
) -> dict[str, Any]:
    return {name: _shown(name, value, environ, False, resolve) for name, value in tables.items()}


def _shown(key: str, value: Any, environ: Mapping[str, str], secret: bool, resolve: bool) -> Any:
    """``value`` (found under ``key``) as shown; ``secret``: a key above it names a secret."""
    secret = secret or is_secret_key(key)
    if isinstance(value, dict):
        if _is_reference_table(value):
            return dict(value)
        return {k: _shown(k, v, environ, secret, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(key, v, environ, secret, resolve) for v in value]
    if isinstance(value, str):
        return _text(value, environ, secret, resolve)
    return MASK if secret else value


def _is_reference_table(value: dict[str, Any]) -> bool:
    # A channel's { secret = "NAME" } or { env = "VAR" }: a name, shown as written.
    return len(value) == 1 and next(iter(value)) in ("secret", "env") and all(
        isinstance(v, str) for v in value.values()
    )


def _text(value: str, environ: Mapping[str, str], secret: bool, resolve: bool) -> str:
    """A text value: references kept or resolved, then masked whole or in its URLs."""
    parts: list[tuple[str, bool]] = []  # (text, shown as written even when secret)
    at = 0
    for m in REFERENCE.finditer(value):
        parts.append((value[at : m.start()], False))
        kind, name = m.groups()
        if kind == "env" and resolve and name in environ:
            parts.append((environ[name], False))
        else:
            parts.append((m.group(0), True))  # a name: the secret's, or an unset variable's
        at = m.end()
    parts.append((value[at:], False))
    if not secret:
        return mask_url("".join(text for text, _ in parts))
    shown: list[str] = []
    for text, written in parts:
        if written:
            shown.append(text)
        elif text and (not shown or shown[-1] != MASK):
            shown.append(MASK)
    return "".join(shown)
