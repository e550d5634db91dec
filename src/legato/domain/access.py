"""Records of who may sign in and what they did: users, sessions, API tokens, secrets and the
audit trail, as the store keeps them.

Field order equals the column order of each record's table (``legato.store.schema``), so a
row converts positionally. Secrets of any kind appear here only as hashes or sealed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A person who may sign in: a local user (with an Argon2id ``password_hash``) or one
    known from single sign-on (``source`` ``oidc``/``saml``, no password).

    ``scope``: the pipelines a grant covers, as name patterns (``finance_*``) or tags
    (``tag:team-a``); empty means all.
    """

    name: str
    role: str
    password_hash: str | None
    source: str
    disabled: bool
    scope: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    last_sign_in_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A browser session, keyed by the SHA-256 of its id (the id itself is only in the
    cookie). ``method``: how its user signed in; ``source``: from which address."""

    session_hash: str
    user_name: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    csrf: str
    method: str
    source: str
    revoked_at: datetime | None = None

    def is_live(self, now: datetime, idle_timeout: timedelta | None = None) -> bool:
        """Whether the session may be used at ``now``: not revoked, not expired, and (with
        ``idle_timeout``) seen within it."""
        if self.revoked_at is not None or now >= self.expires_at:
            return False
        return idle_timeout is None or now - self.last_seen_at < idle_timeout


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token: ``id`` is the public part of the token, ``secret_hash`` the SHA-256 of
    its secret part."""

    id: str
    name: str
    secret_hash: str
    role: str
    scope: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        """Whether the token may be used at ``now``: not revoked, not expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A secret as stored: ``sealed`` is the key ring's ``v1.ID.DATA`` text, never the value.

    ``updated_at``/``updated_by``: when and by whom the value was last set; ``sealed_at``: when
    it was last encrypted (a key rotation seals it again without changing the value).
    """

    name: str
    sealed: str
    key_id: str
    created_at: datetime
    updated_at: datetime
    updated_by: str
    sealed_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the audit trail: an entry (``legato.security.audit.AuditEntry``) with its
    place in the hash chain."""

    seq: int
    at: datetime
    actor: str
    auth: str
    source: str
    action: str
    target: str | None
    outcome: str
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A single sign-on under way, as the store keeps it until the browser comes back.

    ``state_hash``: the SHA-256 of the key the browser carries back (OIDC ``state``, a SAML
    RelayState); ``browser_hash``: the SHA-256 of the cookie of the browser that began it;
    ``kind``: which step it awaits (``oidc``, ``saml``, ``saml-done``); ``data``: what that
    step needs (an OIDC nonce and PKCE verifier, a SAML request id, where to go after).
    """

    state_hash: str
    kind: str
    browser_hash: str
    data: Mapping[str, Any]
    created_at: datetime
    expires_at: datetime
