"""Users: local and single sign-on accounts, their role, scope and state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from legato.domain.access import UserRecord
from legato.domain.records import AlreadyExists, NotFound
from legato.store.store import Store
from tests.store.store_testkit import T0

T1 = T0 + timedelta(hours=1)


def test_a_local_user_is_added_once_and_read_back(store: Store) -> None:
    made = store.users.add_user(
        "ann", "admin", T0, password_hash="$argon2id$v=19$...", scope=["finance_*", "tag:a"]
    )
    expected = UserRecord("ann", "admin", "$argon2id$v=19$...", "local", False,
                          ("finance_*", "tag:a"), T0, T0, None)  # fmt: skip
    assert made == expected
    assert store.users.get_user("ann") == expected
    assert store.users.get_user("bob") is None
    with pytest.raises(AlreadyExists, match="'ann'"):
        store.users.add_user("ann", "viewer", T1)
    assert store.users.get_user("ann") == expected  # the second add changed nothing


def test_users_are_listed_by_name(store: Store) -> None:
    for name in ("carl", "ann", "bob"):
        store.users.add_user(name, "viewer", T0)
    assert [u.name for u in store.users.list_users()] == ["ann", "bob", "carl"]


def test_update_changes_only_what_is_given(store: Store) -> None:
    store.users.add_user("ann", "viewer", T0, password_hash="old")
    changed = store.users.update_user("ann", T1, role="operator", scope=("etl",))
    assert (changed.role, changed.password_hash, changed.scope, changed.disabled) == (
        "operator", "old", ("etl",), False,
    )  # fmt: skip
    assert (changed.created_at, changed.updated_at) == (T0, T1)
    changed = store.users.update_user("ann", T1, disabled=True, password_hash="new")
    assert (changed.role, changed.password_hash, changed.disabled) == ("operator", "new", True)
    assert store.users.update_user("ann", T1, disabled=False, scope=()).scope == ()
    assert store.users.get_user("ann") == store.users.update_user("ann", T1)
    with pytest.raises(NotFound, match="'nobody'"):
        store.users.update_user("nobody", T1, role="admin")


def test_sign_in_time_is_recorded(store: Store) -> None:
    store.users.add_user("ann", "viewer", T0)
    store.users.touch_sign_in("ann", T1)
    user = store.users.get_user("ann")
    assert user is not None and user.last_sign_in_at == T1
    assert user.updated_at == T0
    with pytest.raises(NotFound):
        store.users.touch_sign_in("nobody", T1)


def test_an_sso_user_follows_the_providers_role_and_keeps_what_admins_set(store: Store) -> None:
    made = store.users.upsert_sso_user("dora@example.com", "viewer", "oidc", T0)
    assert made == UserRecord("dora@example.com", "viewer", None, "oidc", False, (), T0, T0)
    store.users.update_user("dora@example.com", T0, disabled=True, scope=["finance_*"])
    again = store.users.upsert_sso_user("dora@example.com", "operator", "oidc", T1)
    assert (again.role, again.disabled, again.scope, again.updated_at) == (
        "operator", True, ("finance_*",), T1,
    )  # fmt: skip
    assert again.password_hash is None


def test_an_sso_sign_in_cannot_take_over_an_account_of_another_source(store: Store) -> None:
    store.users.add_user("admin", "admin", T0, password_hash="h")
    with pytest.raises(AlreadyExists, match="local user named 'admin'"):
        store.users.upsert_sso_user("admin", "viewer", "oidc", T1)
    store.users.upsert_sso_user("eve", "viewer", "saml", T0)
    with pytest.raises(AlreadyExists, match="saml"):
        store.users.upsert_sso_user("eve", "admin", "oidc", T1)
    admin, eve = store.users.get_user("admin"), store.users.get_user("eve")
    assert admin is not None and (admin.role, admin.source, admin.password_hash) == (
        "admin", "local", "h",
    )  # fmt: skip
    assert eve is not None and (eve.role, eve.source) == ("viewer", "saml")
