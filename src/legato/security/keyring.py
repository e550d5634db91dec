"""The key ring that seals secrets at rest with AES-256-GCM.

Keys come from ``LEGATO_SECRET_KEYS`` or a key file readable by its owner only, as
``ID:KEY`` entries (KEY: 32 random bytes, URL-safe base64), separated by commas or lines.
The last entry is the primary key: it seals; every key opens what it sealed, so a ring with
a new key added last opens old secrets while they are sealed again under the new one.

A sealed value is ``v1.ID.DATA`` (DATA: base64 of the 12-byte nonce and the ciphertext).
The secret's name is bound in as associated data: a value copied to another name does not
open.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV", "KeyRing", "KeyRingError", "SealError", "new_key"]

#: The environment variable holding the key ring (it wins over a key file).
ENV = "LEGATO_SECRET_KEYS"

_VERSION = "v1"
_NONCE = 12
_KEY_BYTES = 32


class KeyRingError(ValueError):
    """The key ring given cannot be used (malformed, too open a file, no key)."""


class SealError(ValueError):
    """A sealed value cannot be opened: unknown key, altered, or sealed for another name."""


def new_key() -> str:
    """A fresh key, URL-safe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def _decode_key(key_id: str, text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        raise KeyRingError(f"key {key_id!r} is not URL-safe base64") from None
    if len(raw) != _KEY_BYTES:
        raise KeyRingError(f"key {key_id!r} has {len(raw)} bytes; AES-256 needs {_KEY_BYTES}")
    return raw


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, and which of them seals (``primary``)."""

    keys: Mapping[str, bytes]
    primary: str

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A ring from ``ID:KEY`` entries separated by commas or newlines; the last is primary."""
        keys: dict[str, bytes] = {}
        last = ""
        for entry in text.replace("\n", ",").split(","):
            entry = entry.strip()
            if not entry or entry.startswith("#"):
                continue
            key_id, sep, value = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or "." in key_id:
                raise KeyRingError(
                    "a key ring entry is ID:KEY (an id without dots, then the key)"
                )
            if key_id in keys:
                raise KeyRingError(f"key id {key_id!r} appears twice")
            keys[key_id] = _decode_key(key_id, value.strip())
            last = key_id
        if not keys:
            raise KeyRingError("the key ring holds no key")
        return cls(keys=keys, primary=last)

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        """A ring read from ``path``, which only its owner may read or write."""
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise KeyRingError(f"cannot read the key file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyRingError(
                f"the key file {path} can be read by others (mode {stat.filemode(mode)}); "
                f"chmod 600 {path}"
            )
        return cls.parse(path.read_text())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> KeyRing | None:
        """The ring in ``LEGATO_SECRET_KEYS``, or None when it is not set."""
        text = environ.get(ENV)
        return cls.parse(text) if text else None

    @classmethod
    def load(
        cls, key_file: Path | None, environ: Mapping[str, str] = os.environ
    ) -> KeyRing | None:
        """The ring in ``LEGATO_SECRET_KEYS``, else the one in ``key_file``; None when there is
        neither (no secret was ever set). Read afresh on each call: a rotation in another
        process adds its key to the file, and readers must see it at once."""
        ring = cls.from_env(environ)
        if ring is not None or key_file is None:
            return ring
        if not key_file.exists():
            return None
        return cls.from_file(key_file)

    def text(self) -> str:
        """The ring as ``ID:KEY`` lines, the primary key last (what ``parse`` reads back)."""
        order = [k for k in self.keys if k != self.primary] + [self.primary]
        return "".join(
            f"{k}:{base64.urlsafe_b64encode(self.keys[k]).decode()}\n" for k in order
        )

    def next_id(self) -> str:
        """An id for a new key: ``k`` and a number above those of the ring's ``kN`` ids."""
        numbers = [int(k[1:]) for k in self.keys if k[:1] == "k" and k[1:].isdigit()]
        return f"k{max(numbers, default=0) + 1}"

    def with_key(self, key_id: str, key: str) -> KeyRing:
        """This ring with ``key`` added as the new primary (the step before re-sealing)."""
        if key_id in self.keys:
            raise KeyRingError(f"key id {key_id!r} is already in the ring")
        if not key_id or "." in key_id or ":" in key_id or "," in key_id:
            raise KeyRingError("a key id is a non-empty name without '.', ':' or ','")
        return KeyRing(keys={**self.keys, key_id: _decode_key(key_id, key)}, primary=key_id)

    def without(self, key_id: str) -> KeyRing:
        """This ring with a retired key removed; the primary cannot be."""
        if key_id == self.primary:
            raise KeyRingError(f"key {key_id!r} is the primary key: add a new one first")
        return KeyRing(keys={k: v for k, v in self.keys.items() if k != key_id},
                       primary=self.primary)

    def seal(self, value: bytes, name: str) -> str:
        """``value`` sealed under the primary key, bound to the secret's ``name``."""
        # cryptography is imported where it is used: most commands seal nothing (~5 ms).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(_NONCE)
        data = AESGCM(self.keys[self.primary]).encrypt(nonce, value, name.encode())
        body = base64.urlsafe_b64encode(nonce + data).decode()
        return f"{_VERSION}.{self.primary}.{body}"

    def open(self, sealed: str, name: str) -> bytes:
        """The value ``sealed`` holds for ``name``; SealError if it cannot be opened."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id = self.key_id_of(sealed)
        key = self.keys.get(key_id)
        if key is None:
            raise SealError(
                f"secret {name!r} is sealed with key {key_id!r}, which is not in the key ring"
            )
        try:
            raw = base64.urlsafe_b64decode(sealed.split(".", 2)[2].encode())
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], name.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(
                f"secret {name!r} cannot be opened: it was altered or sealed for another name"
            ) from None

    @staticmethod
    def key_id_of(sealed: str) -> str:
        """The id of the key that sealed ``sealed``."""
        version, sep, rest = sealed.partition(".")
        key_id, sep2, _ = rest.partition(".")
        if version != _VERSION or not sep or not sep2 or not key_id:
            raise SealError("not a sealed value (expected v1.KEY_ID.DATA)")
        return key_id

    def needs_reseal(self, sealed: str) -> bool:
        """Whether ``sealed`` was made with a key other than the primary (rotation pending)."""
        return self.key_id_of(sealed) != self.primary
