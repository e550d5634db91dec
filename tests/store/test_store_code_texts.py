"""Source texts kept by hash, for showing what changed between two runs' code."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from legato.store.store import Store
from tests.store.store_testkit import T0


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_texts_are_kept_once_by_hash(store: Store) -> None:
    one, two = "X = 1\n", "Y = 'é'\n" * 1000
    store.runs.save_code_texts({_sha(one): one}, T0)
    store.runs.save_code_texts({_sha(one): one, _sha(two): two}, T0 + timedelta(seconds=1))
    assert store.runs.get_code_texts([_sha(one), _sha(two), "f" * 64]) == {
        _sha(one): one,
        _sha(two): two,
    }
    assert store.runs.get_code_texts([]) == {}
    store.runs.save_code_texts({}, T0)  # nothing to keep is no error
