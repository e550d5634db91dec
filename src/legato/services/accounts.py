"""Accounts: local users, their roles and passwords, API tokens, and one-time sign-in links.

Every method is an action for admins (``users.*``, ``tokens.*``): the local CLI, trusted as
admin, and signed-in admins on the API. Disabling a user or resetting a password ends that
user's sessions at once, in every web process (they are checked in the store per request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from legato.domain.records import AlreadyExists
from legato.security import tokens
from legato.security.passwords import hash_password
from legato.security.roles import RoleError
from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.scope import check_scope
from legato.services.service_errors import Conflict, NotFoundError, ServiceError
from legato.services.signin import LINK_MINUTES, SignIn

if TYPE_CHECKING:
    from legato.domain.access import TokenRecord, UserRecord
    from legato.services.workspace import Workspace

#: User and token names: letters, digits and . _ @ - (an e-mail address fits).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
#: The shortest password a local user may set.
MIN_PASSWORD = 12
#: The prefix of Legato's API tokens (secret scanners can look for it).
TOKEN_PREFIX = "lgt"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: ``token`` is shown once and never again."""

    token: str
    record: TokenRecord


class Accounts(Service):
    """Users and API tokens of a project's store."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    # -- users -----------------------------------------------------------------------------

    @action("users.read")
    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        return sorted(self.ws.store.users.list_users(), key=lambda u: u.name)

    @action("users.read")
    def user(self, name: str) -> UserRecord:
        """One user; NotFoundError when there is none of that name."""
        found = self.ws.store.users.get_user(name)
        if found is None:
            raise NotFoundError(f"no user {name!r}", "name")
        return found

    @action("users.change", command=True, secret_args=True)
    def add_user(
        self, name: str, role: str, password: str | None = None, scope: tuple[str, ...] = ()
    ) -> UserRecord:
        """A new local user with ``role`` (and ``password``: None for one who signs in by a
        one-time link only). Conflict when the name is taken."""
        _check_name(name)
        self._check_role(role)
        check_scope(scope)
        hashed = None if password is None else hash_password(_check_password(password))
        if self.ws.store.users.get_user(name) is not None:
            raise Conflict(f"there is already a user {name!r}", "name")
        return self.ws.store.users.add_user(
            name, role, self.ws.clock(), password_hash=hashed, scope=check_scope(scope)
        )

    @action("users.change", command=True)
    def set_role(self, name: str, role: str, scope: tuple[str, ...] | None = None) -> UserRecord:
        """Give ``name`` another role (and, when given, another pipeline scope)."""
        self.user(name)
        self._check_role(role)
        done = self.ws.store.users.update_user(
            name, self.ws.clock(), role=role, scope=None if scope is None else check_scope(scope)
        )
        self.ws.forget_credentials()
        return done

    @action("users.change", command=True)
    def disable(self, name: str) -> UserRecord:
        """Stop ``name`` signing in, and end its sessions now."""
        self.user(name)
        now = self.ws.clock()
        done = self.ws.store.users.update_user(name, now, disabled=True)
        self.ws.store.access.revoke_sessions_of(name, now)
        self.ws.forget_credentials()
        return done

    @action("users.change", command=True)
    def enable(self, name: str) -> UserRecord:
        """Let a disabled user sign in again."""
        self.user(name)
        return self.ws.store.users.update_user(name, self.ws.clock(), disabled=False)

    @action("users.change", command=True, secret_args=True)
    def reset_password(self, name: str, password: str) -> UserRecord:
        """Set ``name``'s password, end its sessions and clear a lockout."""
        user = self.user(name)
        if user.source != "local":
            raise ServiceError(
                f"{name!r} signs in through {user.source}: its password is kept there", "name"
            )
        hashed = hash_password(_check_password(password))
        now = self.ws.clock()
        done = self.ws.store.users.update_user(name, now, password_hash=hashed)
        self.ws.store.access.revoke_sessions_of(name, now)
        self.ws.forget_credentials()
        self.ws.store.access.sign_in_succeeded(name)
        return done

    @action("users.change", command=True)
    def ensure_admin(self, name: str) -> UserRecord:
        """The user ``name``, made a passwordless local admin if there is no such user yet
        (what ``legato up`` signs in with its one-time link)."""
        found = self.ws.store.users.get_user(name)
        if found is not None:
            return found
        _check_name(name)
        try:
            return self.ws.store.users.add_user(name, "admin", self.ws.clock())
        except AlreadyExists:  # another process made it meanwhile (two `legato` commands)
            return self.user(name)

    @action("users.link", command=True)
    def sign_in_link(self, name: str, minutes: float = LINK_MINUTES) -> str:
        """A one-time token that signs ``name`` in (for ``/signin/link?token=...``)."""
        user = self.user(name)
        if user.disabled:
            raise Conflict(f"{name!r} is disabled", "name")
        return SignIn(self.ws).new_link(name, minutes)

    # -- API tokens --------------------------------------------------------------------------

    @action("tokens.read")
    def tokens(self, include_revoked: bool = False) -> list[TokenRecord]:
        """API tokens (their names, roles and dates: never their secrets)."""
        return self.ws.store.access.list_tokens(include_revoked=include_revoked)

    @action("tokens.change", command=True)
    def create_token(
        self,
        name: str,
        role: str,
        expires: timedelta | None = None,
        scope: tuple[str, ...] = (),
    ) -> NewToken:
        """A new API token acting with ``role``, expiring after ``expires`` (None: never)."""
        _check_name(name)
        self._check_role(role)
        check_scope(scope)
        if any(t.name == name for t in self.ws.store.access.list_tokens()):
            raise Conflict(f"there is already a token named {name!r}", "name")
        if expires is not None and expires <= timedelta(0):
            raise ServiceError("a token's lifetime must be more than 0", "expires")
        now = self.ws.clock()
        token, token_id, secret_hash = tokens.new_secret(TOKEN_PREFIX)
        record = self.ws.store.access.add_token(
            token_id,
            name,
            secret_hash,
            role,
            now,
            created_by=str(self.actor),
            expires_at=None if expires is None else now + expires,
            scope=tuple(scope),
        )
        return NewToken(token, record)

    @action("tokens.change", command=True)
    def revoke_token(self, name_or_id: str) -> None:
        """Revoke a token by its name or id; NotFoundError when no live token has it."""
        self.ws.forget_credentials()
        if not self.ws.store.access.revoke_token(name_or_id, self.ws.clock()):
            raise NotFoundError(f"no live token {name_or_id!r}", "name")

    def _check_role(self, role: str) -> None:
        try:
            self.ws.roles.check(role)
        except RoleError as exc:
            raise ServiceError(str(exc), "role") from None


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ServiceError(
            f"{name!r} is not a usable name: 1 to 64 letters, digits and . _ @ + -, "
            "starting with a letter or digit",
            "name",
        )
    return name


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"a password needs at least {MIN_PASSWORD} characters", "password")
    return password
