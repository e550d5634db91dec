"""The store's schema as an operator step: its revision, and migrating it.

It reads only a database URL, never a project's code (the new code may not import until the
schema is current). Bad URLs and unreachable databases are ServiceErrors with one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass(frozen=True)
class SchemaStatus:
    """Where a store's schema is: ``found`` (None: none yet), this Legato's ``head``."""

    found: str | None
    head: str
    known: bool  # ``found`` is a revision this Legato knows
    missing_file: Path | None = None  # a SQLite file that does not exist (not created)

    @property
    def current(self) -> bool:
        return self.found == self.head


@dataclass(frozen=True)
class Migrated:
    """What ``upgrade`` did: the revision before and after."""

    before: str | None
    after: str | None


def shown_url(url: str) -> str:
    """``url`` as printed: the password replaced by ``***``."""
    from legato.store import db

    return db.shown_url(url)


class Schema(Service):
    """The schema of the store at ``url``, for one actor."""

    def __init__(self, url: str, actor: Actor) -> None:
        super().__init__(actor)
        self.url = url

    @contextmanager
    def _engine(self) -> Iterator[Engine]:
        from sqlalchemy.exc import ArgumentError, DBAPIError

        from legato.store import db

        try:
            engine = db.create_engine(self.url)
        except (ValueError, ArgumentError) as exc:
            raise ServiceError(f"{shown_url(self.url)}: {exc}") from None
        try:
            yield engine
        except DBAPIError as exc:
            # exc.orig is the driver's own message, without SQLAlchemy's SQL dump and links.
            raise ServiceError(
                f"cannot use the store {shown_url(self.url)}: {str(exc.orig).strip()}"
            ) from None
        finally:
            engine.dispose()

    @action("schema.read")
    def status(self) -> SchemaStatus:
        """The store's revision; a SQLite file that does not exist is not created."""
        from legato.store import db, migrate

        head = migrate.HEAD_REVISION
        missing = db.missing_sqlite_file(self.url)
        if missing is not None:
            return SchemaStatus(None, head, True, missing)
        with self._engine() as engine, engine.connect() as conn:
            found = migrate.current_revision(conn)
        return SchemaStatus(found, head, found is None or found in migrate.known_revisions())

    @action("schema.upgrade", command=True)
    def upgrade(self, revision: str = "head") -> Migrated:
        """Migrate to ``revision``; safe to run twice at once (it takes a lock)."""
        from legato.store import migrate

        with self._engine() as engine:
            done = migrate.upgrade(engine, revision)
        return Migrated(done.before, done.after)
