"""Bearer tokens are found by a public id and checked against a stored hash of their secret."""

from __future__ import annotations

import hashlib

import pytest

from legato.security.tokens import (
    hash_secret,
    new_csrf,
    new_secret,
    new_session_id,
    same_secret,
    split_token,
)


def test_a_new_token_splits_into_its_id_and_a_secret_that_matches_only_its_hash() -> None:
    token, token_id, secret_hash = new_secret("lgt")
    assert token.startswith(f"lgt_{token_id}_")
    assert len(token_id) == 10
    found = split_token(token, "lgt")
    assert found is not None
    assert found[0] == token_id
    secret = found[1]
    assert len(secret) >= 43  # 32 random bytes
    assert secret_hash == hashlib.sha256(secret.encode()).hexdigest() == hash_secret(secret)
    assert secret not in secret_hash
    assert same_secret(secret, secret_hash)
    assert not same_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret_hash)
    assert not same_secret("", secret_hash)


def test_every_token_is_new() -> None:
    made = [new_secret("lgt") for _ in range(200)]
    assert len({t for t, _, _ in made}) == len({i for _, i, _ in made}) == 200


def test_split_refuses_what_is_not_a_token() -> None:
    token, _, _ = new_secret("lgt")
    assert split_token(token, "lgw") is None  # another kind of token
    assert split_token(token) is not None
    for bad in ("", "lgt", "lgt_abc", "lgt_short_" + "x" * 43, "lgt_ABCDEFGHIJ_" + "x" * 43,
                token[:-10], "Bearer " + token, "l-t_abcdefghij_" + "x" * 43):  # fmt: skip
        assert split_token(bad) is None, bad


def test_a_prefix_must_not_make_tokens_ambiguous() -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_secret("lg_t")


def test_session_ids_and_csrf_tokens_are_long_and_fresh() -> None:
    ids = {new_session_id() for _ in range(100)} | {new_csrf() for _ in range(100)}
    assert len(ids) == 200
    assert min(len(i) for i in ids) >= 43
