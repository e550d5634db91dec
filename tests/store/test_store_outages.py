"""Which store errors are outages to wait out, and which are a full disk to report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.exc import OperationalError

from legato.domain.records import StoreFull
from legato.store.db import full_error, is_disk_full, is_unavailable


def _wrapped(orig: BaseException) -> OperationalError:
    return OperationalError("INSERT ...", {}, orig)


class _PgDiskFull(Exception):
    sqlstate = "53100"


def test_a_full_sqlite_disk_is_not_an_outage() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(_wrapped(full))
    assert not is_unavailable(_wrapped(full))
    assert is_unavailable(_wrapped(sqlite3.OperationalError("database is locked")))


def test_a_full_postgresql_disk_is_not_an_outage() -> None:
    exc = _wrapped(_PgDiskFull("could not extend file: No space left on device"))
    assert is_disk_full(exc) and not is_unavailable(exc)


def test_the_message_says_what_is_full_where_and_what_to_free(tmp_path: Path) -> None:
    db = tmp_path / "s" / "legato.db"
    err = full_error(
        _wrapped(sqlite3.OperationalError("database or disk is full")),
        f"sqlite:///{db}",
        ", then retry",
    )
    assert isinstance(err, StoreFull)
    text = str(err)
    assert "\n" not in text
    assert str(db) in text and "full" in text and "Free space" in text
    assert text.endswith(", then retry")
    assert full_error(_wrapped(sqlite3.OperationalError("no such table: x")), "sqlite://") is None
    pg = full_error(_wrapped(_PgDiskFull("disk full")), "postgresql://u:secret@db/x")
    assert pg is not None and "secret" not in str(pg) and "PostgreSQL" in str(pg)
