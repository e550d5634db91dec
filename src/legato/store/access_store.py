"""Sign-in state: browser sessions, API tokens, lockouts after failed sign-ins, one-time
sign-in links and single sign-ons under way.

Nothing here is usable if the store leaks: sessions, tokens and links are found by the
SHA-256 of their secret (the caller hashes), never by the secret itself. What several web
processes must agree on (a lockout, a link used once) is decided inside one write
transaction: SQLite has one writer; PostgreSQL locks the row or decides in one UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from legato.domain.access import PendingSignIn, SessionRecord, TokenRecord
from legato.domain.records import AlreadyExists
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import for_update, insert_if_missing
from legato.store.schema import (
    api_tokens,
    sessions,
    sign_in_failures,
    sign_in_links,
    sign_in_states,
)
from legato.store.user_store import scope_json, scope_of

#: How stale a session's last-seen or a token's last-used time may get before a use writes
#: it again: at most one write a minute per session or token keeps the request path cheap.
RECORD_USE_EVERY = timedelta(seconds=60)

_s = sessions.c
_t = api_tokens.c
_f = sign_in_failures.c
_l = sign_in_links.c
_p = sign_in_states.c


def _token(row: Sequence[Any]) -> TokenRecord:
    values = list(row)
    values[4] = scope_of(values[4])
    return TokenRecord(*values)


class AccessStore(Part):
    """Sessions, API tokens, sign-in lockouts, one-time sign-in links and single sign-ons
    under way."""

    # -- browser sessions ----------------------------------------------------------------------

    @rows.unwrap_bind_errors
    def create_session(
        self,
        session_hash: str,
        user: str,
        now: datetime,
        *,
        expires_at: datetime,
        csrf: str,
        method: str,
        source: str,
    ) -> SessionRecord:
        """Store a new session of ``user`` under the SHA-256 of its id."""
        record = SessionRecord(session_hash, user, now, expires_at, now, csrf, method, source)
        with self._write.begin() as conn:
            conn.execute(insert(sessions).values(rows.record_values(sessions, record)))
        return record

    def get_session(self, session_hash: str) -> SessionRecord | None:
        """The session, revoked and expired ones included (``SessionRecord.is_live``)."""
        with self._engine.connect() as conn:
            found = conn.execute(select(sessions).where(_s.session_hash == session_hash)).first()
        return None if found is None else SessionRecord(*found)

    @rows.unwrap_bind_errors
    def touch_session(self, session_hash: str, now: datetime) -> bool:
        """Record that the session was used at ``now`` (for the idle timeout); True if this
        wrote. Writes only when the recorded time is :data:`RECORD_USE_EVERY` old."""
        stmt = update(sessions).where(
            _s.session_hash == session_hash,
            _s.revoked_at.is_(None),
            _s.last_seen_at <= now - RECORD_USE_EVERY,
        )
        with self._write.begin() as conn:
            return bool(conn.execute(stmt.values(last_seen_at=now)).rowcount)

    @rows.unwrap_bind_errors
    def revoke_session(self, session_hash: str, now: datetime) -> bool:
        """End one session (sign-out); False if it was unknown or already revoked."""
        return self._revoke_sessions(_s.session_hash == session_hash, now) > 0

    @rows.unwrap_bind_errors
    def revoke_sessions_of(self, user: str, now: datetime) -> int:
        """End every live session of ``user`` (disabled, password reset); how many."""
        return self._revoke_sessions(_s.user_name == user, now)

    def _revoke_sessions(self, which: Any, now: datetime) -> int:
        stmt = update(sessions).where(which, _s.revoked_at.is_(None)).values(revoked_at=now)
        with self._write.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    @rows.unwrap_bind_errors
    def delete_expired_sessions(self, now: datetime) -> int:
        """Delete the sessions that expired or were revoked by ``now``; how many."""
        stmt = delete(sessions).where(or_(_s.expires_at <= now, _s.revoked_at <= now))
        with self._write.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    # -- API tokens ----------------------------------------------------------------------------

    @rows.unwrap_bind_errors
    def add_token(
        self,
        token_id: str,
        name: str,
        secret_hash: str,
        role: str,
        now: datetime,
        *,
        created_by: str,
        expires_at: datetime | None = None,
        scope: Iterable[str] = (),
    ) -> TokenRecord:
        """Store a new API token; AlreadyExists when an unrevoked token has that name."""
        record = TokenRecord(
            token_id, name, secret_hash, role, tuple(scope), created_by, now, expires_at
        )
        values = rows.record_values(api_tokens, record) | {"scope": scope_json(record.scope)}
        try:
            with self._write.begin() as conn:
                conn.execute(insert(api_tokens).values(values))
        except IntegrityError:
            raise AlreadyExists(f"an API token named {name!r} exists already") from None
        return record

    def get_token(self, token_id: str) -> TokenRecord | None:
        """The token with this public id (revoked and expired ones included), or None."""
        with self._engine.connect() as conn:
            found = conn.execute(select(api_tokens).where(_t.id == token_id)).first()
        return None if found is None else _token(found)

    def list_tokens(self, include_revoked: bool = False) -> list[TokenRecord]:
        """API tokens, oldest first; unrevoked ones only unless ``include_revoked``."""
        stmt = select(api_tokens).order_by(_t.created_at, _t.name)
        if not include_revoked:
            stmt = stmt.where(_t.revoked_at.is_(None))
        with self._engine.connect() as conn:
            return [_token(r) for r in conn.execute(stmt)]

    @rows.unwrap_bind_errors
    def revoke_token(self, name_or_id: str, now: datetime) -> bool:
        """Revoke the unrevoked token with this id, or else with this name; False if none."""
        live = update(api_tokens).where(_t.revoked_at.is_(None)).values(revoked_at=now)
        with self._write.begin() as conn:
            if conn.execute(live.where(_t.id == name_or_id)).rowcount:
                return True
            return bool(conn.execute(live.where(_t.name == name_or_id)).rowcount)

    @rows.unwrap_bind_errors
    def token_used(self, token_id: str, now: datetime) -> bool:
        """Record that the token was used at ``now``; True if this wrote. Writes only when the
        recorded time is :data:`RECORD_USE_EVERY` old, so busy clients cost no write each.
        A caller holding the token's record can skip the call (and its write transaction)
        while ``last_used_at`` is younger than that."""
        stmt = update(api_tokens).where(
            _t.id == token_id,
            or_(_t.last_used_at.is_(None), _t.last_used_at <= now - RECORD_USE_EVERY),
        )
        with self._write.begin() as conn:
            return bool(conn.execute(stmt.values(last_used_at=now)).rowcount)

    # -- lockouts after failed sign-ins --------------------------------------------------------

    @rows.unwrap_bind_errors
    def sign_in_failed(
        self, name: str, now: datetime, *, window: timedelta, limit: int, lock_for: timedelta
    ) -> datetime | None:
        """Count a failed sign-in as ``name``; when it makes ``limit`` failures within the
        last ``window``, lock the name until ``now + lock_for`` and return that time.

        Returns None otherwise, also while the name is locked already (failures then do not
        count: the caller should not have tried the password). So however many web processes
        report failures at once, exactly one of them reaches the lockout.
        """
        with self._write.begin() as conn:
            new = {"name": name, "failures": "[]", "locked_until": None, "updated_at": now}
            insert_if_missing(conn, sign_in_failures, new)
            # The row lock serialises the processes counting failures of this name.
            stmt = select(_f.failures, _f.locked_until).where(_f.name == name)
            failures, locked = conn.execute(for_update(stmt, self._backend)).one()
            key = update(sign_in_failures).where(_f.name == name)
            if locked is not None and locked > now:
                return None
            since = now - window
            recent = [t for t in map(datetime.fromisoformat, rows.from_json(failures)) if t > since]
            recent.append(now)
            if len(recent) >= limit:
                until = now + lock_for
                conn.execute(key.values(failures="[]", locked_until=until, updated_at=now))
                return until
            kept = rows.to_json([t.isoformat() for t in recent])
            conn.execute(key.values(failures=kept, locked_until=None, updated_at=now))
            return None

    def locked_until(self, name: str, now: datetime) -> datetime | None:
        """Until when ``name`` is locked out, or None when it is not at ``now``."""
        with self._engine.connect() as conn:
            found = conn.execute(select(_f.locked_until).where(_f.name == name)).scalar()
        return found if found is not None and found > now else None

    def sign_in_succeeded(self, name: str) -> None:
        """Forget the failed sign-ins of ``name``."""
        with self._write.begin() as conn:
            conn.execute(delete(sign_in_failures).where(_f.name == name))

    @rows.unwrap_bind_errors
    def delete_stale_failures(self, before: datetime) -> int:
        """Forget failures last counted before ``before`` whose lockout (if any) has ended:
        names nobody signs in as (guessed ones) would otherwise stay forever; how many."""
        stmt = delete(sign_in_failures).where(
            _f.updated_at < before, or_(_f.locked_until.is_(None), _f.locked_until < before)
        )
        with self._write.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    # -- one-time sign-in links ----------------------------------------------------------------

    @rows.unwrap_bind_errors
    def add_link(self, link_hash: str, user: str, now: datetime, expires_at: datetime) -> None:
        """Store a one-time sign-in link for ``user`` under the SHA-256 of its token."""
        values = {"link_hash": link_hash, "user_name": user, "created_at": now,
                  "expires_at": expires_at, "used_at": None}  # fmt: skip
        with self._write.begin() as conn:
            conn.execute(insert(sign_in_links).values(values))

    @rows.unwrap_bind_errors
    def use_link(self, link_hash: str, now: datetime) -> str | None:
        """Use the link: its user, the first time before it expires; None ever after (or for
        an unknown or expired link). Decided by one UPDATE, so two processes racing with the
        same link cannot both sign in."""
        key = _l.link_hash == link_hash
        stmt = update(sign_in_links).where(key, _l.used_at.is_(None), _l.expires_at > now)
        with self._write.begin() as conn:
            if not conn.execute(stmt.values(used_at=now)).rowcount:
                return None
            return str(conn.execute(select(_l.user_name).where(key)).scalar_one())

    @rows.unwrap_bind_errors
    def delete_expired_links(self, now: datetime) -> int:
        """Delete the links that were used or expired by ``now``; how many."""
        stmt = delete(sign_in_links).where(or_(_l.expires_at <= now, _l.used_at <= now))
        with self._write.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    # -- single sign-on under way --------------------------------------------------------------

    @rows.unwrap_bind_errors
    def add_pending(
        self,
        state_hash: str,
        kind: str,
        browser_hash: str,
        data: Mapping[str, Any],
        now: datetime,
        expires_at: datetime,
    ) -> PendingSignIn:
        """Keep a sign-in under way until ``expires_at``; the ones expired by ``now`` go (a
        browser that never came back leaves its row behind)."""
        record = PendingSignIn(state_hash, kind, browser_hash, dict(data), now, expires_at)
        values = rows.record_values(sign_in_states, record) | {"data": rows.to_json(data)}
        with self._write.begin() as conn:
            conn.execute(delete(sign_in_states).where(_p.expires_at <= now))
            conn.execute(insert(sign_in_states).values(values))
        return record

    @rows.unwrap_bind_errors
    def take_pending(self, state_hash: str, kind: str, now: datetime) -> PendingSignIn | None:
        """Take the sign-in under way kept under ``state_hash`` for step ``kind``: it is
        deleted, so it is found once. None when unknown, taken already, of another kind or
        expired. Decided by the DELETE, so two processes racing for it cannot both have it."""
        key = _p.state_hash == state_hash
        with self._write.begin() as conn:
            found = conn.execute(select(sign_in_states).where(key)).first()
            if found is None or not conn.execute(delete(sign_in_states).where(key)).rowcount:
                return None
        values = list(found)
        values[3] = rows.from_json(values[3])
        record = PendingSignIn(*values)
        return record if record.kind == kind and now < record.expires_at else None
