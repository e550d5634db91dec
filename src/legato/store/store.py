"""The Store: every read and write of Legato's durable state goes through its parts.

All datetimes in and out are timezone-aware UTC. The store never reads the wall clock; callers
pass ``now``.

Event ids and ordering: every transaction that appends events for a run first UPDATEs (or, in
``create_run``, INSERTs) that run's row. On PostgreSQL the row lock this takes serialises the
event writers of one run, so event ids of a run become visible in increasing order and a reader
polling ``get_events(run_id, after_id=last_seen)`` never skips one. (SQLite has one writer.)
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, text, update
from sqlalchemy.exc import DBAPIError

from legato.domain.records import StoreError, StoreFull, StoreReplaced
from legato.store import db
from legato.store.access_store import AccessStore
from legato.store.alert_store import AlertStore
from legato.store.asset_store import AssetStore
from legato.store.audit_store import AuditStore
from legato.store.backfill_store import BackfillStore
from legato.store.browse_store import BrowseStore, PipelineSummary
from legato.store.check_store import CheckStore
from legato.store.claim_store import ClaimStore
from legato.store.cursor_store import CursorStore
from legato.store.daemon_store import DaemonStore
from legato.store.database import Database
from legato.store.facts_store import FactStore
from legato.store.lineage_store import LineageStore
from legato.store.migrate import check_schema, ensure_schema
from legato.store.pool_store import PoolStore
from legato.store.queue_store import QueueStore
from legato.store.retention_store import RetentionStore
from legato.store.run_store import RunStore
from legato.store.schedule_store import ScheduleStore
from legato.store.schema import snapshots
from legato.store.secret_store import SecretStore
from legato.store.stats_store import StatsStore
from legato.store.trigger_store import TriggerStore
from legato.store.user_store import UserStore

__all__ = ["PipelineSummary", "Store"]


class Store:
    """Durable state, one part per aggregate over one database.

    ``runs`` (runs, task runs, attempts, events, snapshots, leases one run at a time),
    ``claims`` (several schedulers taking queued and orphaned runs), ``queue``, ``schedules``,
    ``triggers``, ``backfills``, ``pools``, ``browse`` (lists and operator marks) and
    ``daemons`` (heartbeats); for security ``users``, ``access`` (sessions, API tokens,
    sign-in lockouts and one-time links), ``secrets`` (sealed values) and ``audit`` (the
    hash-chained audit trail); ``stats`` (runs counted and timed over a window, for the
    overview page); ``alerts`` (the alert outbox, alerts, deliveries, silences); ``facts``
    (facts about the store itself: the environment it belongs to); ``lineage`` (the outbox
    of OpenLineage run events); ``checks`` (data-quality check results). A consumer
    takes the part it needs, typed by its face in
    ``legato.store.faces``.

    ``cursors`` keeps the windows incremental extracts read (``legato.domain.cursors``);
    ``assets`` the materializations of assets (``legato.domain.materializations``);
    ``retention`` the runs a retention policy lets go.

    Open with :meth:`Store.open`. Thread-safe (each call checks a connection out of the pool);
    after ``os.fork()`` the child must call :meth:`after_fork` before using an inherited store.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine made by ``legato.store.db.create_engine``; prefer :meth:`open`."""
        self._db = Database(engine)
        self.runs = RunStore(self._db)
        self.claims = ClaimStore(self._db)
        self.queue = QueueStore(self._db)
        self.schedules = ScheduleStore(self._db)
        self.triggers = TriggerStore(self._db)
        self.backfills = BackfillStore(self._db)
        self.pools = PoolStore(self._db)
        self.browse = BrowseStore(self._db)
        self.daemons = DaemonStore(self._db)
        self.users = UserStore(self._db)
        self.access = AccessStore(self._db)
        self.secrets = SecretStore(self._db)
        self.audit = AuditStore(self._db)
        self.cursors = CursorStore(self._db)
        self.stats = StatsStore(self._db)
        self.alerts = AlertStore(self._db)
        self.facts = FactStore(self._db)
        self.lineage = LineageStore(self._db)
        self.assets = AssetStore(self._db)
        self.checks = CheckStore(self._db)
        self.retention = RetentionStore(self._db)
        self._file = db.sqlite_file(engine.url)
        # Which file this store opened: a folder deleted (or a file copied over it) under a
        # running process leaves it writing to a file nobody else sees (check_file).
        self._identity = _identity(self._file) if self._file is not None else None

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to the database at ``url``, migrating its schema first if it is new or old.

        With ``migrate=False`` a database that is not at the current schema raises StoreError.
        """
        engine = db.create_engine(url)
        try:
            if migrate:
                ensure_schema(engine)
            else:
                check_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def _engine(self) -> Engine:
        return self._db.engine

    def close(self) -> None:
        """Close the pooled connections (a later call would open new ones)."""
        self._db.close()

    def after_fork(self) -> None:
        """Forget the connections inherited from the parent process (without closing them)."""
        self._db.engine.dispose(close=False)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.shown_url!r})"

    @property
    def shown_url(self) -> str:
        """The database URL with its password hidden: what messages to people show."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def url(self) -> str:
        """The database URL (normalised, password included) - enough to open it again."""
        return self._engine.url.render_as_string(hide_password=False)

    @property
    def backend(self) -> db.Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.backend

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file (absolute), or None (PostgreSQL, an in-memory database)."""
        return self._file

    def full_error(self, exc: BaseException, then: str = "") -> StoreFull | None:
        """A StoreFull saying what is full and what to free (then ``then``) when ``exc`` says
        the disk under this store is full; None for any other error."""
        return db.full_error(exc, self.url, then)

    # -- health --------------------------------------------------------------------------------

    def check_file(self) -> None:
        """Raise StoreReplaced if the SQLite file this store opened is no longer the file at its
        path (removed, or replaced by another). A no-op on PostgreSQL."""
        if self._file is None or self._identity is None:
            return
        now = _identity(self._file)
        if now == self._identity:
            return
        what = "removed" if now is None else "replaced by another file"
        raise StoreReplaced(
            f"the store file {self._file} was {what} while this process had it open: "
            "what it writes now is lost. Start again to use the store at that path "
            "(or put the old file back)"
        )

    def ping(self) -> None:
        """Run a trivial query; raise StoreError if the database cannot be reached (or, on
        SQLite, if its file was removed or replaced since it was opened)."""
        self.check_file()
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise StoreError(f"store {self!r} is unreachable: {exc.orig}") from exc

    def check_writable(self) -> None:
        """Open a write transaction and run a no-op UPDATE; raise StoreError if that fails."""
        try:
            with self._db.write.connect() as conn, conn.begin() as tx:
                conn.execute(update(snapshots).where(text("1 = 0")).values(pipeline="x"))
                tx.rollback()
        except DBAPIError as exc:
            raise StoreError(f"store {self!r} is not writable: {exc.orig}") from exc


def _identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of ``path``; None when there is no file there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
