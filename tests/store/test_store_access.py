"""Sign-in state: sessions, API tokens, lockouts after failed sign-ins, one-time links."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from legato.domain.access import PendingSignIn, SessionRecord, TokenRecord
from legato.domain.records import AlreadyExists
from legato.security.tokens import hash_secret, new_secret, new_session_id, split_token
from legato.store import db
from legato.store.store import Store
from tests.store.store_testkit import T0, race

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _session(store: Store, user: str = "ann", now: datetime = T0) -> str:
    session_hash = hash_secret(new_session_id())
    store.access.create_session(session_hash, user, now, expires_at=now + 8 * HOUR,
                                csrf="c5rf", method="password", source="10.0.0.7")  # fmt: skip
    return session_hash


def _raw_rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    engine = db.create_engine(store.url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


# -- sessions ------------------------------------------------------------------------------------


def test_a_session_is_kept_under_the_hash_of_its_id(store: Store) -> None:
    session_id = new_session_id()
    made = store.access.create_session(
        hash_secret(session_id), "ann", T0, expires_at=T0 + 8 * HOUR, csrf="c5rf",
        method="oidc", source="10.0.0.7",
    )  # fmt: skip
    assert made == SessionRecord(hash_secret(session_id), "ann", T0, T0 + 8 * HOUR, T0, "c5rf",
                                 "oidc", "10.0.0.7")  # fmt: skip
    assert store.access.get_session(hash_secret(session_id)) == made
    assert store.access.get_session(session_id) is None
    # A copy of the store holds no live session id.
    assert session_id not in repr(_raw_rows(store, "SELECT * FROM sessions"))
    assert made.is_live(T0 + HOUR, idle_timeout=2 * HOUR)
    assert not made.is_live(T0 + 3 * HOUR, idle_timeout=2 * HOUR)
    assert not made.is_live(T0 + 8 * HOUR)


def test_touching_a_session_writes_at_most_once_a_minute(store: Store) -> None:
    session = _session(store)
    assert not store.access.touch_session(session, T0 + 30 * timedelta(seconds=1))
    assert store.access.touch_session(session, T0 + 2 * MINUTE)
    assert not store.access.touch_session(session, T0 + 2 * MINUTE + timedelta(seconds=59))
    seen = store.access.get_session(session)
    assert seen is not None and seen.last_seen_at == T0 + 2 * MINUTE
    assert not store.access.touch_session("0" * 64, T0 + HOUR)


def test_revoked_sessions_stop_and_expired_ones_are_deleted(store: Store) -> None:
    first, second, other = _session(store), _session(store), _session(store, "bob")
    assert store.access.revoke_session(first, T0 + MINUTE)
    assert not store.access.revoke_session(first, T0 + 2 * MINUTE)  # already
    revoked = store.access.get_session(first)
    assert revoked is not None and revoked.revoked_at == T0 + MINUTE
    assert not revoked.is_live(T0 + MINUTE)
    assert not store.access.touch_session(first, T0 + HOUR)  # a revoked session stays idle
    assert store.access.revoke_sessions_of("ann", T0 + HOUR) == 1  # only `second` was live
    live = store.access.get_session(other)
    assert live is not None and live.is_live(T0 + HOUR)
    late = _session(store, "bob", now=T0 + 4 * HOUR)
    # At T0 + 8h: the revoked two and `other` (expired) go; `late` stays.
    assert store.access.delete_expired_sessions(T0 + 8 * HOUR) == 3
    assert [store.access.get_session(s) is None for s in (first, second, other, late)] == [
        True, True, True, False,
    ]  # fmt: skip


# -- API tokens ----------------------------------------------------------------------------------


def test_a_token_is_stored_by_id_and_hash_and_found_from_the_bearer_value(store: Store) -> None:
    token, token_id, secret_hash = new_secret("lgt")
    made = store.access.add_token(token_id, "ci", secret_hash, "operator", T0, created_by="ann",
                                  expires_at=T0 + 90 * 24 * HOUR, scope=["etl_*"])  # fmt: skip
    assert made == TokenRecord(token_id, "ci", secret_hash, "operator", ("etl_*",), "ann", T0,
                               T0 + 90 * 24 * HOUR)  # fmt: skip
    found = split_token(token, "lgt")
    assert found is not None
    assert store.access.get_token(found[0]) == made
    assert store.access.get_token("nosuchid00") is None
    assert found[1] not in repr(_raw_rows(store, "SELECT * FROM api_tokens"))
    assert made.is_live(T0 + HOUR) and not made.is_live(T0 + 90 * 24 * HOUR)


def test_token_names_are_unique_among_unrevoked_tokens(store: Store) -> None:
    _, first_id, first_hash = new_secret("lgt")
    store.access.add_token(first_id, "ci", first_hash, "viewer", T0, created_by="ann")
    _, second_id, second_hash = new_secret("lgt")
    with pytest.raises(AlreadyExists, match="'ci'"):
        store.access.add_token(second_id, "ci", second_hash, "admin", T0, created_by="ann")
    assert store.access.get_token(second_id) is None
    assert store.access.revoke_token("ci", T0 + HOUR)  # by name
    assert not store.access.revoke_token("ci", T0 + HOUR)  # nothing unrevoked left of that name
    store.access.add_token(second_id, "ci", second_hash, "admin", T0 + HOUR, created_by="ann")
    assert [t.id for t in store.access.list_tokens()] == [second_id]
    assert [(t.id, t.revoked_at) for t in store.access.list_tokens(include_revoked=True)] == [
        (first_id, T0 + HOUR), (second_id, None),
    ]  # fmt: skip
    assert store.access.revoke_token(second_id, T0 + 2 * HOUR)  # by id
    assert store.access.list_tokens() == []
    assert not store.access.revoke_token("unknown", T0)


def test_token_use_is_recorded_at_most_once_a_minute(store: Store) -> None:
    _, token_id, secret_hash = new_secret("lgt")
    store.access.add_token(token_id, "ci", secret_hash, "viewer", T0, created_by="ann")
    assert store.access.token_used(token_id, T0 + timedelta(seconds=5))  # the first use
    assert not store.access.token_used(token_id, T0 + timedelta(seconds=64))
    assert store.access.token_used(token_id, T0 + timedelta(seconds=65))
    used = store.access.get_token(token_id)
    assert used is not None and used.last_used_at == T0 + timedelta(seconds=65)
    assert not store.access.token_used("nosuchid00", T0)


# -- lockouts ------------------------------------------------------------------------------------

LOCKOUT = {"window": 15 * MINUTE, "limit": 3, "lock_for": 10 * MINUTE}


def test_failures_within_the_window_lock_the_name(store: Store) -> None:
    failed = store.access.sign_in_failed
    assert failed("ann", T0, **LOCKOUT) is None
    assert failed("ann", T0 + 14 * MINUTE, **LOCKOUT) is None
    # The first failure slid out of the window: two count, no lockout yet.
    assert failed("ann", T0 + 16 * MINUTE, **LOCKOUT) is None
    assert store.access.locked_until("ann", T0 + 16 * MINUTE) is None
    until = failed("ann", T0 + 17 * MINUTE, **LOCKOUT)
    assert until == T0 + 27 * MINUTE
    assert store.access.locked_until("ann", T0 + 20 * MINUTE) == until
    assert store.access.locked_until("bob", T0 + 20 * MINUTE) is None
    # While locked, failures neither count nor extend the lockout.
    assert failed("ann", T0 + 20 * MINUTE, **LOCKOUT) is None
    assert store.access.locked_until("ann", T0 + 20 * MINUTE) == until
    assert store.access.locked_until("ann", until) is None
    # After it, counting starts afresh.
    assert failed("ann", until, **LOCKOUT) is None
    assert failed("ann", until + MINUTE, **LOCKOUT) is None


def test_a_successful_sign_in_clears_the_failures(store: Store) -> None:
    store.access.sign_in_failed("ann", T0, **LOCKOUT)
    store.access.sign_in_failed("ann", T0, **LOCKOUT)
    store.access.sign_in_succeeded("ann")
    assert store.access.sign_in_failed("ann", T0, **LOCKOUT) is None
    assert store.access.sign_in_failed("ann", T0, **LOCKOUT) is None
    assert store.access.sign_in_failed("ann", T0, **LOCKOUT) == T0 + 10 * MINUTE
    store.access.sign_in_succeeded("nobody")  # no row: nothing to clear


def test_stale_failures_are_forgotten_but_not_a_running_lockout(store: Store) -> None:
    store.access.sign_in_failed("guess1", T0, **LOCKOUT)
    for _ in range(3):
        store.access.sign_in_failed("ann", T0 + HOUR, **LOCKOUT)
    assert store.access.delete_stale_failures(T0 + HOUR + MINUTE) == 1
    assert store.access.locked_until("ann", T0 + HOUR + MINUTE) == T0 + HOUR + 10 * MINUTE
    assert store.access.delete_stale_failures(T0 + 2 * HOUR) == 1


def test_racing_web_processes_reach_the_lockout_exactly_once(store: Store) -> None:
    limit = 4
    results = race(store, 6, lambda s, _: s.access.sign_in_failed(
        "ann", T0, window=HOUR, limit=limit, lock_for=HOUR))  # fmt: skip
    assert results.count(None) == 5
    assert [r for r in results if r is not None] == [T0 + HOUR]
    assert store.access.locked_until("ann", T0) == T0 + HOUR


# -- one-time sign-in links ----------------------------------------------------------------------


def test_a_link_signs_in_once_before_it_expires(store: Store) -> None:
    store.access.add_link(hash_secret("once"), "admin", T0, T0 + HOUR)
    store.access.add_link(hash_secret("late"), "admin", T0, T0 + HOUR)
    assert store.access.use_link(hash_secret("unknown"), T0) is None
    assert store.access.use_link(hash_secret("once"), T0 + MINUTE) == "admin"
    assert store.access.use_link(hash_secret("once"), T0 + MINUTE) is None
    assert store.access.use_link(hash_secret("late"), T0 + HOUR) is None  # expired
    assert store.access.delete_expired_links(T0 + 2 * MINUTE) == 1  # the used one
    assert store.access.delete_expired_links(T0 + HOUR) == 1


def test_racing_processes_with_one_link_sign_in_once(store: Store) -> None:
    for round_ in range(3):
        link = hash_secret(f"link-{round_}")
        store.access.add_link(link, "admin", T0, T0 + HOUR)
        results = race(store, 4, lambda s, _, link=link: s.access.use_link(link, T0))
        assert sorted(results, key=str) == [None, None, None, "admin"]


# -- single sign-on under way --------------------------------------------------------------------


def test_a_pending_sign_on_is_taken_once_for_its_own_step(store: Store) -> None:
    state = new_session_id()
    data = {"nonce": "n0", "verifier": "v" * 64, "next": "/runs"}
    key = hash_secret(state)
    made = store.access.add_pending(key, "oidc", "b" * 64, data, T0, T0 + 10 * MINUTE)
    assert made == PendingSignIn(key, "oidc", "b" * 64, data, T0, T0 + 10 * MINUTE)
    assert state not in repr(_raw_rows(store, "SELECT * FROM sign_in_states"))
    assert store.access.take_pending(key, "oidc", T0 + MINUTE) == made
    assert store.access.take_pending(key, "oidc", T0 + MINUTE) is None  # a replay finds nothing

    # Offered to another step, it is refused and gone: a misuse spends it.
    store.access.add_pending(key, "saml", "b" * 64, data, T0, T0 + 10 * MINUTE)
    assert store.access.take_pending(key, "saml-done", T0) is None
    assert store.access.take_pending(key, "saml", T0) is None


def test_a_pending_sign_on_expires_and_expired_ones_are_cleared(store: Store) -> None:
    late, kept = hash_secret("late"), hash_secret("kept")
    store.access.add_pending(late, "saml", "b" * 64, {"request": "id-1"}, T0, T0 + 10 * MINUTE)
    assert store.access.take_pending(late, "saml", T0 + 10 * MINUTE) is None
    store.access.add_pending(late, "saml", "b" * 64, {}, T0, T0 + MINUTE)
    store.access.add_pending(kept, "saml", "b" * 64, {}, T0 + 2 * MINUTE, T0 + 12 * MINUTE)
    assert _raw_rows(store, "SELECT kind FROM sign_in_states") == [("saml",)]  # `late` cleared
    found = store.access.take_pending(kept, "saml", T0 + 3 * MINUTE)
    assert found is not None and found.data == {}


def test_racing_processes_with_one_callback_take_it_once(store: Store) -> None:
    key = hash_secret("state")
    store.access.add_pending(key, "oidc", "b" * 64, {"nonce": "n"}, T0, T0 + HOUR)
    results = race(store, 4, lambda s, _: s.access.take_pending(key, "oidc", T0))
    assert sum(r is not None for r in results) == 1
