"""The key ring seals secrets so that only the ring opens them, for their own name only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from legato.security.keyring import KeyRing, KeyRingError, SealError, new_key


def ring(*ids: str) -> KeyRing:
    return KeyRing.parse(",".join(f"{i}:{new_key()}" for i in ids))


def test_a_sealed_value_opens_with_its_ring_and_its_name_and_holds_no_plain_text() -> None:
    keys = ring("k1")
    sealed = keys.seal(b"hunter2-password", "warehouse_password")
    assert sealed.startswith("v1.k1.")
    assert "hunter2" not in sealed
    assert keys.open(sealed, "warehouse_password") == b"hunter2-password"
    # Two seals of one value differ (a fresh nonce each time).
    assert keys.seal(b"hunter2-password", "warehouse_password") != sealed


def test_a_value_copied_to_another_name_or_altered_does_not_open() -> None:
    keys = ring("k1")
    sealed = keys.seal(b"s3cret", "a")
    with pytest.raises(SealError, match="altered or sealed for another name"):
        keys.open(sealed, "b")
    body = sealed.rsplit(".", 1)[1]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(SealError):
        keys.open(sealed.rsplit(".", 1)[0] + "." + flipped, "a")


def test_another_ring_cannot_open_and_says_which_key_is_missing() -> None:
    sealed = ring("k1").seal(b"x", "n")
    with pytest.raises(SealError, match="altered"):
        ring("k1").open(sealed, "n")  # same id, other key
    with pytest.raises(SealError, match="key 'k1', which is not in the key ring"):
        ring("k2").open(sealed, "n")


def test_rotation_adds_a_primary_key_old_values_open_until_resealed() -> None:
    old = ring("k1")
    sealed = old.seal(b"value", "n")
    rotated = old.with_key("k2", new_key())
    assert rotated.primary == "k2"
    assert rotated.needs_reseal(sealed)
    resealed = rotated.seal(rotated.open(sealed, "n"), "n")
    assert not rotated.needs_reseal(resealed)
    retired = rotated.without("k1")
    assert retired.open(resealed, "n") == b"value"
    with pytest.raises(SealError, match="not in the key ring"):
        retired.open(sealed, "n")
    with pytest.raises(KeyRingError, match="primary"):
        retired.without("k2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no key"),
        ("k1", "ID:KEY"),
        ("k1:not base64!!", "base64"),
        ("k1:" + "QUJD", "3 bytes"),
        ("k.1:" + "A" * 43 + "=", "ID:KEY"),  # a well-formed key: the id is wrong
    ],
)
def test_a_malformed_ring_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.parse(text)


def test_a_duplicate_key_id_is_refused() -> None:
    with pytest.raises(KeyRingError, match="twice"):
        KeyRing.parse(f"k1:{new_key()}\nk1:{new_key()}")


def test_the_last_entry_is_primary_and_comments_and_blank_lines_are_skipped() -> None:
    keys = KeyRing.parse(f"# keys\nold:{new_key()}\n\nnew:{new_key()}\n")
    assert keys.primary == "new" and set(keys.keys) == {"old", "new"}


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"k1:{new_key()}\n")
    os.chmod(path, 0o644)
    with pytest.raises(KeyRingError, match="chmod 600"):
        KeyRing.from_file(path)
    os.chmod(path, 0o600)
    assert KeyRing.from_file(path).primary == "k1"


def test_the_ring_comes_from_the_environment_when_set() -> None:
    assert KeyRing.from_env({}) is None
    assert KeyRing.from_env({"LEGATO_SECRET_KEYS": f"a:{new_key()},b:{new_key()}"}).primary == "b"


def test_a_ring_comes_from_the_environment_else_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.keys"
    assert KeyRing.load(path, {}) is None  # no secret set yet: no ring
    on_disk = ring("k1", "k2")
    path.write_text(on_disk.text())
    path.chmod(0o600)
    loaded = KeyRing.load(path, {})
    assert loaded is not None and loaded.keys == on_disk.keys and loaded.primary == "k2"
    assert loaded.next_id() == "k3"
    in_env = ring("e1")
    from_env = KeyRing.load(path, {"LEGATO_SECRET_KEYS": in_env.text().strip()})
    assert from_env is not None and list(from_env.keys) == ["e1"]
