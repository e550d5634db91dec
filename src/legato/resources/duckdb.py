"""The ``duckdb`` kind: a DuckDB warehouse file that the tasks of every worker process take
turns on.

    [resources.warehouse]
    kind = "duckdb"
    path = "warehouse.duckdb"
    config = { threads = 2, memory_limit = "1GB" }

DuckDB lets one process at a time open a file for writing, and none open it for reading
while one writes. ``DuckDBWarehouse.connect()`` therefore holds a lock on a file beside the
database (``warehouse.duckdb.lock``) while the connection is open: exclusive to write,
shared to read (``read_only=True``), so readers run together and a writer waits for them.
The lock is the operating system's (``flock``): a process that dies lets go of it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from legato.resources.kind import ResourceError, ResourceKind

if TYPE_CHECKING:
    import duckdb

__all__ = ["DuckDBResource", "DuckDBWarehouse"]


class DuckDBWarehouse:
    """What tasks get from a ``duckdb`` resource::

        with warehouse.connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS sales AS SELECT * FROM df")

    Connect for as long as the work needs and no longer: every other task writing to (or,
    while this one writes, reading from) the warehouse waits for it.
    """

    def __init__(self, path: str, config: dict[str, Any] | None = None) -> None:
        self.path = path
        self.lock_path = path + ".lock"
        self.config = dict(config or {})

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, open while the lock is held; closed on leaving."""
        import duckdb

        with self._locked(shared=read_only):
            con = duckdb.connect(self.path, read_only=read_only, config=self.config)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def _locked(self, *, shared: bool) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # flock blocks until the lock is free; a task's timeout bounds the wait.
            # Each connect() opens the lock file anew, and flock treats descriptors apart:
            # threads of one process exclude each other as processes do.
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor lets go of the lock

    def close(self) -> None:
        """Nothing stays open between connections."""

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path!r})"


class DuckDBResource(ResourceKind):
    """``path``: the warehouse file (relative: in the project's folder; its folder is made on
    open); ``config``: DuckDB settings for each connection (threads, memory_limit...)."""

    kind = "duckdb"
    settings_keys: ClassVar[frozenset[str]] = frozenset({"path", "config"})

    def validate(self) -> None:
        path = self.require("path")
        if path == ":memory:" or not path:
            raise ResourceError(
                f"resource {self.name!r} (duckdb): 'path' must be a file (a memory database "
                "is private to one connection; use the sql kind with duckdb:///:memory:)"
            )
        self.option("config", dict, None)

    def open(self) -> DuckDBWarehouse:
        path = self.project_path(self.settings["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return DuckDBWarehouse(path, self.settings.get("config"))

    def check(self, client: DuckDBWarehouse) -> str:
        import duckdb

        if not os.path.exists(client.path):
            if not os.access(os.path.dirname(client.path), os.W_OK):
                raise ResourceError(
                    f"resource {self.name!r} (duckdb): {client.path} does not exist and its "
                    "folder is not writable"
                )
            return f"{client.path} not made yet (a first write makes it), {_version(duckdb)}"
        with client.connect(read_only=True) as con:
            row = con.execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_catalog = current_database()"
            ).fetchone()
        tables = row[0] if row else 0
        return f"{client.path}: {tables} tables, {_version(duckdb)}"


def _version(module: Any) -> str:
    return f"DuckDB {module.__version__}"
