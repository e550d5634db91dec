"""The ``duckdb`` kind: a warehouse file that worker processes take turns on through a lock
beside it: writers one at a time, readers together, none while one writes."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from legato.resources.duckdb import DuckDBResource, DuckDBWarehouse
from legato.resources.kind import ResourceError, kind_class

ROUNDS = 12


def warehouse(settings: dict[str, Any]) -> DuckDBResource:
    resource = kind_class("duckdb")("warehouse", {"kind": "duckdb", **settings})
    assert isinstance(resource, DuckDBResource)
    return resource


def _work(root: str, who: str, barrier: Any, errors: Any) -> None:
    """A worker process: writes and reads the warehouse ROUNDS times each, as tasks would."""
    try:
        wh = warehouse({"path": "wh/warehouse.duckdb", "root": root}).open()
        barrier.wait()
        for i in range(ROUNDS):
            with wh.connect() as con:
                con.execute("CREATE TABLE IF NOT EXISTS sales (who TEXT, i INTEGER)")
                con.execute("INSERT INTO sales VALUES (?, ?)", [who, i])
            with wh.connect(read_only=True) as con:
                row = con.execute("SELECT count(*) FROM sales WHERE who = ?", [who]).fetchone()
                assert row is not None and row[0] == i + 1
    except BaseException as exc:
        errors.put(f"{who}: {type(exc).__name__}: {exc}")
        raise


def test_two_processes_write_one_file_taking_turns(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    errors = ctx.Queue()
    workers = [
        ctx.Process(target=_work, args=(str(tmp_path), who, barrier, errors)) for who in "ab"
    ]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(300)
    found = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert [proc.exitcode for proc in workers] == [0, 0], found
    wh = warehouse({"path": str(tmp_path / "wh" / "warehouse.duckdb")}).open()
    with wh.connect(read_only=True) as con:
        rows = con.execute("SELECT who, count(*) FROM sales GROUP BY who ORDER BY who").fetchall()
    assert rows == [("a", ROUNDS), ("b", ROUNDS)]


def held(wh: DuckDBWarehouse, mode: int) -> bool:
    """Whether the lock beside the warehouse is held against ``mode`` (asked without
    waiting)."""
    fd = os.open(wh.lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_readers_share_the_lock_and_a_writer_has_it_alone(tmp_path: Path) -> None:
    wh = warehouse({"path": "warehouse.duckdb", "root": str(tmp_path)}).open()
    with wh.connect() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert held(wh, fcntl.LOCK_SH)  # no reader while the writer is connected
    assert not held(wh, fcntl.LOCK_EX)  # let go when the connection closes
    with wh.connect(read_only=True) as first, wh.connect(read_only=True) as second:
        assert first.execute("SELECT x FROM t").fetchone() == (1,)
        assert second.execute("SELECT x FROM t").fetchone() == (1,)
        assert not held(wh, fcntl.LOCK_SH)  # readers together...
        assert held(wh, fcntl.LOCK_EX)  # ...and a writer waits for them
    assert not held(wh, fcntl.LOCK_EX)


def test_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    wh = warehouse({"path": "warehouse.duckdb", "root": str(tmp_path)}).open()
    with wh.connect() as con:
        con.execute("CREATE TABLE n (i INTEGER)")

    def write(i: int) -> None:
        with wh.connect() as con:
            con.execute("INSERT INTO n VALUES (?)", [i])
        with wh.connect(read_only=True) as con:
            con.execute("SELECT count(*) FROM n").fetchone()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with wh.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM n").fetchone() == (8,)


def test_path_config_and_check(tmp_path: Path) -> None:
    resource = warehouse(
        {"path": "data/wh.duckdb", "config": {"threads": 1}, "root": str(tmp_path / "project")}
    )
    wh = resource.open()
    assert wh.path == str(tmp_path / "project" / "data" / "wh.duckdb")
    assert resource.check(wh).startswith(f"{wh.path} not made yet (a first write makes it)")
    with wh.connect() as con:
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
        con.execute("CREATE TABLE sales AS SELECT 1 AS x")
    assert resource.check(wh) == f"{wh.path}: 1 tables, DuckDB {duckdb.__version__}"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "'path' is required"),
        ({"path": ":memory:"}, "'path' must be a file"),
        ({"path": "w.duckdb", "config": "threads=1"}, "'config' must be a dict"),
        ({"path": "w.duckdb", "read_only": True}, "unknown setting 'read_only'"),
    ],
)
def test_wrong_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceError, match=message):
        warehouse(settings)
