"""Signing in: turning a credential into an ``Actor``, and keeping browser sessions.

This is the one service without a gate: it is what makes the actors the gate checks. It
records every sign-in, failure and sign-out in the audit trail itself.

Credentials:

- an API token (``Authorization: Bearer lgt_...``), stored as the SHA-256 of its secret;
- a browser session: a random id in an HttpOnly cookie, kept in the store as its SHA-256 with
  an expiry, an idle timeout and the CSRF token its pages carry;
- a password (local users, Argon2id) or a one-time link (``legato up`` prints one for the
  local administrator), each of which opens a session;
- an identity from single sign-on (OIDC or SAML) mapped to a role, which opens a session too.

Repeated failed passwords for a name lock it for a while; the count lives in the store so
that every web process agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.security import tokens
from legato.security.audit import AuditEntry
from legato.security.passwords import verify_password
from legato.security.roles import NOTHING, Permissions, RoleError
from legato.security.tokens import hash_secret
from legato.services.actor import Actor, ActorKind
from legato.services.service_errors import Unauthenticated

if TYPE_CHECKING:
    from legato.domain.access import UserRecord
    from legato.services.workspace import Workspace

#: A session's last-seen time is written at most this often (each request would otherwise write).
_TOUCH_EVERY = timedelta(seconds=60)
#: How long a credential checked against the store is taken as checked again, in this
#: process: repeated requests skip the store's read and the hop to a worker thread. A token
#: revoked or a user disabled in another process stops working after at most this long; in
#: this process at once (every change of accounts forgets what was checked).
RECHECK_AFTER = timedelta(seconds=1)
#: Credentials remembered at most (they are forgotten all at once past it).
_REMEMBERED = 10_000
#: How long a one-time sign-in link printed by ``legato up`` works.
LINK_MINUTES = 15.0
_WRONG = "wrong name or password"


@dataclass(frozen=True, slots=True)
class Issued:
    """A session just opened: the cookie's value (shown once), its CSRF token, its end."""

    session_id: str
    csrf: str
    expires_at: datetime
    user: str


@dataclass(frozen=True, slots=True)
class Signed:
    """A request's actor, and for a browser session the CSRF token its changes must carry."""

    actor: Actor
    csrf: str | None = None


class SignIn:
    """Credentials in, actors out, for one workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # -- per request ---------------------------------------------------------------------

    def recent(self, kind: str, credential: str, source: str | None) -> Signed | None:
        """The actor ``credential`` (``kind``: ``bearer`` or ``session``) proved within the
        last ``RECHECK_AFTER`` in this process, without touching the store; None otherwise."""
        entry = self.ws.checked_credentials.get((kind, credential))
        if entry is None:
            return None
        signed, at = entry
        now = self.ws.clock()
        if not at <= now < at + RECHECK_AFTER:
            return None
        return replace(signed, actor=replace(signed.actor, source=source))

    def _remember(self, kind: str, credential: str, signed: Signed) -> Signed:
        remembered = self.ws.checked_credentials
        if len(remembered) >= _REMEMBERED:
            remembered.clear()
        remembered[(kind, credential)] = (signed, self.ws.clock())
        return signed

    def bearer(self, token: str, source: str | None = None) -> Signed:
        """The actor of an API token; Unauthenticated when it is unknown, revoked or expired."""
        parts = tokens.split_token(token)
        now = self.ws.clock()
        found = self.ws.store.access.get_token(parts[0]) if parts else None
        if (
            parts is None
            or found is None
            or not found.is_live(now)
            or not tokens.same_secret(parts[1], found.secret_hash)
        ):
            raise Unauthenticated("missing, wrong, revoked or expired API token")
        if found.last_used_at is None or now - found.last_used_at >= _TOUCH_EVERY:
            self.ws.store.access.token_used(found.id, now)
        actor = Actor(
            ActorKind.HTTP,
            f"token:{found.name}",
            self._permissions(found.role),
            role=found.role,
            auth="token",
            source=source,
            scope=tuple(found.scope),
        )
        return self._remember("bearer", token, Signed(actor))

    def session(self, session_id: str, source: str | None = None) -> Signed:
        """The actor of a browser session; Unauthenticated when it ended (expired, idle too
        long, signed out, its user disabled)."""
        now = self.ws.clock()
        key = hash_secret(session_id)
        found = self.ws.store.access.get_session(key)
        idle = timedelta(minutes=self.ws.config.auth.idle_minutes)
        if found is None or not found.is_live(now, idle):
            raise Unauthenticated("not signed in, or the session ended: sign in again")
        user = self.ws.store.users.get_user(found.user_name)
        if user is None or user.disabled:
            raise Unauthenticated("this account is disabled")
        if now - found.last_seen_at >= _TOUCH_EVERY:
            self.ws.store.access.touch_session(key, now)
        signed = Signed(self._actor(user, found.method, source), found.csrf)
        return self._remember("session", session_id, signed)

    # -- opening and closing sessions -------------------------------------------------------

    def password(self, name: str, password: str, source: str | None = None) -> Issued:
        """Check a local user's password and open a session; Unauthenticated (one message for
        every kind of failure, so it tells nothing of which names exist) or a lockout."""
        now = self.ws.clock()
        access = self.ws.store.access
        locked = access.locked_until(name, now)
        if locked is not None:
            self._audit(f"user:{name}", "password", source, "auth.signin", "refused", "locked")
            raise Unauthenticated(
                f"too many failed sign-ins: {name!r} is locked until "
                f"{locked:%Y-%m-%d %H:%M:%S} UTC"
            )
        user = self.ws.store.users.get_user(name)
        good = (
            user is not None
            and not user.disabled
            and user.password_hash is not None
            and verify_password(user.password_hash, password)
        )
        if not good or user is None:
            a = self.ws.config.auth
            until = access.sign_in_failed(
                name,
                now,
                window=timedelta(minutes=a.failure_window_minutes),
                limit=a.max_failures,
                lock_for=timedelta(minutes=a.lockout_minutes),
            )
            why = "wrong password, now locked" if until is not None else "wrong password"
            self._audit(f"user:{name}", "password", source, "auth.signin", "refused", why)
            raise Unauthenticated(_WRONG)
        access.sign_in_succeeded(name)
        return self._open(user, "password", source)

    def link(self, link_token: str, source: str | None = None) -> Issued:
        """Open a session with a one-time link (each works once, for a short while)."""
        now = self.ws.clock()
        name = self.ws.store.access.use_link(hash_secret(link_token), now)
        user = self.ws.store.users.get_user(name) if name is not None else None
        if user is None or user.disabled:
            why = "unknown, used or expired link"
            self._audit("link", "link", source, "auth.signin", "refused", why)
            raise Unauthenticated("this sign-in link is unknown, used or expired")
        return self._open(user, "link", source)

    def identity(self, name: str, role: str, method: str, source: str | None = None) -> Issued:
        """Open a session for a user signed in by an identity provider (``method``: oidc,
        saml) with the role its groups map to; the user is recorded (or updated) as such."""
        self.ws.roles.check(role)
        now = self.ws.clock()
        existing = self.ws.store.users.get_user(name)
        if existing is not None and existing.disabled:
            self._audit(f"user:{name}", method, source, "auth.signin", "refused", "disabled")
            raise Unauthenticated("this account is disabled")
        user = self.ws.store.users.upsert_sso_user(name, role, method, now)
        return self._open(user, method, source)

    def refused(self, method: str, reason: str, source: str | None = None) -> None:
        """Record a sign-in by ``method`` (oidc, saml) refused before it named a user the
        store knows: an identity provider's answer that did not pass its checks."""
        self._audit(method, method, source, "auth.signin", "refused", reason)

    def sign_out(self, session_id: str, source: str | None = None) -> None:
        """End the session (its cookie no longer works anywhere)."""
        key = hash_secret(session_id)
        found = self.ws.store.access.get_session(key)
        self.ws.store.access.revoke_session(key, self.ws.clock())
        self.ws.forget_credentials()
        if found is not None:
            self._audit(f"user:{found.user_name}", found.method, source, "auth.signout", "ok")

    def new_link(self, user: str, minutes: float = LINK_MINUTES) -> str:
        """A one-time sign-in token for ``user`` (an existing, enabled user)."""
        now = self.ws.clock()
        link = tokens.new_session_id()
        expires = now + timedelta(minutes=minutes)
        self.ws.store.access.add_link(hash_secret(link), user, now, expires)
        return link

    def _open(self, user: UserRecord, method: str, source: str | None) -> Issued:
        now = self.ws.clock()
        session_id, csrf = tokens.new_session_id(), tokens.new_csrf()
        expires = now + timedelta(hours=self.ws.config.auth.session_hours)
        self.ws.store.access.create_session(
            hash_secret(session_id),
            user.name,
            now,
            expires_at=expires,
            csrf=csrf,
            method=method,
            source=source or "",
        )
        self.ws.store.users.touch_sign_in(user.name, now)
        self._audit(f"user:{user.name}", method, source, "auth.signin", "ok")
        return Issued(session_id, csrf, expires, user.name)

    # -- helpers ---------------------------------------------------------------------------

    def _actor(self, user: UserRecord, method: str, source: str | None) -> Actor:
        return Actor(
            ActorKind.HTTP,
            user.name,
            self._permissions(user.role),
            role=user.role,
            auth=method,
            source=source,
            scope=tuple(user.scope),
        )

    def _permissions(self, role: str) -> Permissions:
        try:
            return self.ws.roles.permissions(role)
        except RoleError:  # a custom role removed from legato.toml: it grants nothing now
            return NOTHING

    def _audit(
        self,
        actor: str,
        auth: str,
        source: str | None,
        action: str,
        outcome: str,
        reason: str | None = None,
    ) -> None:
        self.ws.audit(
            AuditEntry(
                at=self.ws.clock(),
                actor=actor,
                auth=auth,
                source=source or "",
                action=action,
                target="",
                outcome=outcome,
                detail={} if reason is None else {"reason": reason},
            )
        )
