"""Secrets are stored sealed, and a key rotation never overwrites a value set meanwhile."""

from __future__ import annotations

from datetime import timedelta

from legato.domain.access import SecretRecord
from legato.security.keyring import KeyRing, new_key
from legato.store.store import Store
from tests.store.store_testkit import T0

T1, T2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)


def test_a_secret_is_set_replaced_read_and_deleted(store: Store) -> None:
    made = store.secrets.put_secret("db_password", "v1.k1.AAAA", "k1", T0, by="ann")
    assert made == SecretRecord("db_password", "v1.k1.AAAA", "k1", T0, T0, "ann", T0)
    replaced = store.secrets.put_secret("db_password", "v1.k1.BBBB", "k1", T1, by="bob")
    assert replaced == SecretRecord("db_password", "v1.k1.BBBB", "k1", T0, T1, "bob", T1)
    assert store.secrets.get_secret("db_password") == replaced
    assert store.secrets.get_secret("other") is None
    store.secrets.put_secret("api_key", "v1.k1.CCCC", "k1", T1, by="ann")
    assert [s.name for s in store.secrets.list_secrets()] == ["api_key", "db_password"]
    assert store.secrets.delete_secret("api_key")
    assert not store.secrets.delete_secret("api_key")
    assert [s.name for s in store.secrets.list_secrets()] == ["db_password"]


def test_rotation_reseals_what_is_left_under_old_keys(store: Store) -> None:
    old = KeyRing.parse(f"k1:{new_key()}")
    for name in ("a", "b", "c"):
        store.secrets.put_secret(name, old.seal(name.encode() * 3, name), "k1", T0, by="ann")
    ring = old.with_key("k2", new_key())
    assert [s.name for s in store.secrets.secrets_not_under("k2")] == ["a", "b", "c"]
    for secret in store.secrets.secrets_not_under("k2"):
        value = ring.open(secret.sealed, secret.name)
        assert store.secrets.reseal(
            secret.name, secret.sealed, ring.seal(value, secret.name), "k2", T1
        )
    assert store.secrets.secrets_not_under("k2") == []
    resealed = store.secrets.get_secret("b")
    assert resealed is not None
    assert ring.without("k1").open(resealed.sealed, "b") == b"bbb"
    # Who set the value and when stay; only the sealing is new.
    assert (resealed.updated_at, resealed.updated_by, resealed.sealed_at) == (T0, "ann", T1)


def test_a_rotation_racing_a_set_keeps_the_new_value(store: Store) -> None:
    store.secrets.put_secret("token", "v1.k1.OLD", "k1", T0, by="ann")
    seen = store.secrets.get_secret("token")
    assert seen is not None
    # A `set` lands between the rotation reading the secret and writing it sealed again.
    store.secrets.put_secret("token", "v1.k2.NEW", "k2", T1, by="bob")
    assert not store.secrets.reseal("token", seen.sealed, "v1.k2.OLD-RESEALED", "k2", T2)
    now = store.secrets.get_secret("token")
    assert now is not None and (now.sealed, now.updated_by) == ("v1.k2.NEW", "bob")
    assert not store.secrets.reseal("gone", "x", "y", "k2", T2)
