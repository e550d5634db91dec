"""Owner-only files are replaced atomically, and a first one is made by one process only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from legato.security.files import replace_private


def test_a_file_is_replaced_whole_and_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.keys"
    old = os.umask(0)
    try:
        replace_private(path, b"first\n", exclusive=True)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with pytest.raises(FileExistsError):
            replace_private(path, b"second\n", exclusive=True)
        assert path.read_bytes() == b"first\n"
        replace_private(path, b"third\n")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"third\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.keys"]  # no leftovers
