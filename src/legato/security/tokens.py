"""Bearer tokens, session ids and CSRF tokens: random values and how they are kept.

A bearer token reads ``PREFIX_ID_SECRET``: the prefix says what it is (``lgt`` for an API
token) so that a leaked one is recognisable by secret scanners; the id is public and finds
the stored row in one indexed lookup; only a hash of the secret is stored, so a copy of the
store hands out no working token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

__all__ = [
    "hash_secret",
    "new_csrf",
    "new_secret",
    "new_session_id",
    "same_secret",
    "split_token",
]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 10  # 36**10 ~ 3.7e15: collisions are negligible and the id stays readable
_SECRET_BYTES = 32  # 256 bits of entropy, as token_urlsafe(32) gives
_MIN_SECRET_CHARS = 43  # the length of token_urlsafe(32): shorter cannot be ours


def new_secret(prefix: str) -> tuple[str, str, str]:
    """A new bearer token ``PREFIX_ID_SECRET`` as ``(token, id, secret_hash)``.

    Show ``token`` once to its owner; store ``id`` and ``secret_hash`` only.
    """
    if not prefix.isalnum():
        raise ValueError(f"a token prefix must be letters and digits, got {prefix!r}")
    token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return f"{prefix}_{token_id}_{secret}", token_id, hash_secret(secret)


def split_token(token: str, prefix: str | None = None) -> tuple[str, str] | None:
    """``(id, secret)`` of a token made by :func:`new_secret` (of ``prefix`` when given);
    None for anything that is not shaped like one."""
    parts = token.split("_", 2)
    if len(parts) != 3:
        return None
    kind, token_id, secret = parts
    if prefix is not None and kind != prefix:
        return None
    if not kind.isalnum() or len(token_id) != _ID_LENGTH:
        return None
    if any(c not in _ID_ALPHABET for c in token_id) or len(secret) < _MIN_SECRET_CHARS:
        return None
    return token_id, secret


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest of ``secret``, as stored.

    A plain fast hash is right here and Argon2 is not: these secrets are 256 random bits, so
    no dictionary or brute-force search can find one from its hash, and they are checked on
    every API request, where a deliberately slow hash would cost tens of milliseconds each.
    Argon2 is for passwords, which people choose and which are therefore guessable
    (``legato.security.passwords``).
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(secret: str, hashed: str) -> bool:
    """Whether ``secret`` hashes to ``hashed``, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret).encode(), hashed.encode())


def new_session_id() -> str:
    """A new browser session id (256 random bits, URL-safe); store only its hash."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def new_csrf() -> str:
    """A new CSRF token for a session's forms (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(_SECRET_BYTES)
