"""Users: who may sign in, with which role and scope, and whether they are disabled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from legato.domain.access import UserRecord
from legato.domain.records import AlreadyExists, NotFound
from legato.store import rows
from legato.store.database import Part
from legato.store.dialect import insert_if_missing
from legato.store.schema import users

_u = users.c


def scope_json(scope: Iterable[str]) -> str:
    """A scope (pipeline patterns) as stored: a JSON list."""
    return rows.to_json([str(s) for s in scope])


def scope_of(text: str) -> tuple[str, ...]:
    """A stored scope read back."""
    return tuple(rows.from_json(text))


def _user(row: Sequence[Any]) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], row[3], bool(row[4]), scope_of(row[5]), *row[6:])


class UserStore(Part):
    """Users, local and from single sign-on."""

    @rows.unwrap_bind_errors
    def add_user(
        self,
        name: str,
        role: str,
        now: datetime,
        *,
        password_hash: str | None = None,
        source: str = "local",
        scope: Iterable[str] = (),
    ) -> UserRecord:
        """Create a user; AlreadyExists when the name is taken."""
        user = UserRecord(name, role, password_hash, source, False, tuple(scope), now, now)
        values = rows.record_values(users, user) | {"scope": scope_json(user.scope)}
        try:
            with self._write.begin() as conn:
                conn.execute(insert(users).values(values))
        except IntegrityError:
            raise AlreadyExists(f"a user named {name!r} exists already") from None
        return user

    def get_user(self, name: str) -> UserRecord | None:
        """The user called ``name``, or None."""
        with self._engine.connect() as conn:
            found = conn.execute(select(users).where(_u.name == name)).first()
        return None if found is None else _user(found)

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self._engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(_u.name))]

    @rows.unwrap_bind_errors
    def update_user(
        self,
        name: str,
        now: datetime,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        scope: Iterable[str] | None = None,
    ) -> UserRecord:
        """Change what is given of a user and return it; NotFound when there is no such user."""
        changes: dict[str, Any] = {"updated_at": now}
        if role is not None:
            changes["role"] = role
        if password_hash is not None:
            changes["password_hash"] = password_hash
        if disabled is not None:
            changes["disabled"] = disabled
        if scope is not None:
            changes["scope"] = scope_json(scope)
        return self._change(name, changes)

    @rows.unwrap_bind_errors
    def touch_sign_in(self, name: str, now: datetime) -> None:
        """Record that ``name`` signed in at ``now``; NotFound when there is no such user."""
        self._change(name, {"last_sign_in_at": now})

    def _change(self, name: str, changes: dict[str, Any]) -> UserRecord:
        with self._write.begin() as conn:
            if conn.execute(update(users).where(_u.name == name).values(changes)).rowcount == 0:
                raise NotFound(f"there is no user named {name!r}")
            return _user(conn.execute(select(users).where(_u.name == name)).one())

    @rows.unwrap_bind_errors
    def upsert_sso_user(self, name: str, role: str, source: str, now: datetime) -> UserRecord:
        """Create the single sign-on user ``name`` or set its role to ``role`` (the identity
        provider's groups decide it at each sign-in). Disabled stays disabled and the scope
        an admin set is kept.

        AlreadyExists when ``name`` is a user of another source: an identity provider must
        never take over a local account (or one of another provider) that shares its name.
        """
        with self._write.begin() as conn:
            key = _u.name == name
            found = conn.execute(select(_u.source).where(key)).first()
            if found is None:
                values = {
                    "name": name,
                    "role": role,
                    "password_hash": None,
                    "source": source,
                    "scope": scope_json(()),
                    "created_at": now,
                    "updated_at": now,
                }
                # A concurrent sign-in of the same person may have made it meanwhile.
                if not insert_if_missing(conn, users, values):
                    found = conn.execute(select(_u.source).where(key)).one()
            if found is not None:
                if found[0] != source:
                    raise AlreadyExists(
                        f"a {found[0]} user named {name!r} exists: a {source} sign-in "
                        "cannot use that name"
                    )
                conn.execute(update(users).where(key).values(role=role, updated_at=now))
            return _user(conn.execute(select(users).where(key)).one())
