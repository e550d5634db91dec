"""Passwords are kept as Argon2id hashes that only the right password matches."""

from __future__ import annotations

from argon2 import PasswordHasher

from legato.security.passwords import hash_password, needs_rehash, verify_password


def test_a_hash_is_argon2id_salted_and_matches_only_its_password() -> None:
    encoded = hash_password("correct horse battery staple")
    assert encoded.startswith("$argon2id$")
    assert "correct horse" not in encoded
    assert hash_password("correct horse battery staple") != encoded  # a fresh salt
    assert verify_password(encoded, "correct horse battery staple")
    assert not verify_password(encoded, "correct horse battery stapl")
    assert not verify_password(encoded, "")


def test_a_malformed_hash_is_a_mismatch_and_wants_rehashing() -> None:
    assert not verify_password("not a hash", "anything")
    assert needs_rehash("not a hash")


def test_a_hash_made_with_weaker_parameters_wants_rehashing() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash("pw")
    assert verify_password(weak, "pw")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("pw"))
