"""The ``sql`` kind against PostgreSQL, SQLite and DuckDB files: engines made from settings,
relative files in the project's folder, pool settings, check and close."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from legato.resources.kind import ResourceError, kind_class
from legato.resources.sql import SqlResource
from tests.helpers import free_port, wait_for


def sql(settings: dict[str, Any]) -> SqlResource:
    kind = kind_class("sql")
    resource = kind("db", {"kind": "sql", **settings})
    assert isinstance(resource, SqlResource)
    return resource


def backends(engine: Any, name: str) -> int:
    """Server processes serving connections named ``name`` (a new transaction each time:
    pg_stat_activity is a snapshot per transaction)."""
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
            {"n": name},
        ).scalar_one()
    return int(found)


@pytest.mark.postgres
def test_postgresql_engine_pools_connections_and_close_lets_them_go(pg_url: str) -> None:
    app = f"legato-{uuid.uuid4().hex[:10]}"
    resource = sql({"url": pg_url, "pool_size": 2, "connect_args": {"application_name": app}})
    engine = resource.open()
    watcher = sql({"url": pg_url}).open()
    try:
        said = resource.check(engine)
        assert said.startswith("SELECT 1 answered by PostgreSQL ")
        assert "127.0.0.1:5432/test" in said
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE orders (id int PRIMARY KEY, amount numeric)"))
            conn.execute(text("INSERT INTO orders VALUES (1, 9.5), (2, 20)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sum(amount) FROM orders")).scalar_one() == 29.5
        assert engine.pool.size() == 2  # type: ignore[attr-defined]
        assert backends(watcher, app) == 1  # the pooled connection stays open between uses
        resource.close(engine)
        # The server ends a backend just after its client hangs up.
        wait_for(lambda: backends(watcher, app) == 0, what="the pooled connection closed")
    finally:
        watcher.dispose()


@pytest.mark.postgres
def test_check_fails_when_the_server_does_not_answer() -> None:
    resource = sql({"url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"})
    engine = resource.open()  # lazy: nothing is connected before the first use
    try:
        with pytest.raises(Exception, match=r"refused|connect"):
            resource.check(engine)
    finally:
        resource.close(engine)


def test_relative_sqlite_file_lies_in_the_project_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    resource = sql({"url": "sqlite:///data/shop.db", "root": str(project)})
    engine = resource.open()
    try:
        assert resource.check(engine).startswith("SELECT 1 answered by SQLite 3.")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x int)"))
    finally:
        resource.close(engine)
    assert (project / "data" / "shop.db").is_file()  # its folder made
    absolute = tmp_path / "elsewhere.db"
    engine = sql({"url": f"sqlite:///{absolute}", "root": str(project)}).open()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x int)"))
    engine.dispose()
    assert absolute.is_file()


def test_duckdb_url_uses_the_installed_dialect_and_lets_the_file_go(tmp_path: Path) -> None:
    resource = sql({"url": "duckdb:///wh/warehouse.duckdb", "root": str(tmp_path)})
    engine = resource.open()
    try:
        assert resource.check(engine).startswith("SELECT 1 answered by DuckDB v")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE sales AS SELECT 42 AS amount"))
        # Another process can open the file for writing while this engine lives: no idle
        # pooled connection keeps it.
        code = (
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]);"
            "con.execute('INSERT INTO sales VALUES (8)'); con.close()"
        )
        path = str(tmp_path / "wh" / "warehouse.duckdb")
        subprocess.run([sys.executable, "-c", code, path], check=True, timeout=120)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sum(amount) FROM sales")).scalar_one() == 50
    finally:
        resource.close(engine)


def test_memory_urls_are_left_alone(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "duckdb:///:memory:"):
        resource = sql({"url": url, "root": str(tmp_path)})
        assert resource.url().database in (None, ":memory:")
        engine = resource.open()
        assert "SELECT 1 answered" in resource.check(engine)
        resource.close(engine)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "'url' is required"),
        ({"url": 5}, "'url' must be a str"),
        ({"url": "sqlite://", "pool_size": "5"}, "'pool_size' must be a int"),
        ({"url": "sqlite://", "pool_pre_ping": 1}, "'pool_pre_ping' must be a bool"),
        ({"url": "sqlite://", "poolsize": 5}, "unknown setting 'poolsize'"),
    ],
)
def test_wrong_settings_are_refused_naming_the_resource(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ResourceError, match=message) as caught:
        sql(settings)
    assert "resource 'db' (sql)" in str(caught.value)


def test_pool_and_root_are_accepted_by_every_kind() -> None:
    resource = sql({"url": "sqlite://", "pool": "warehouse", "root": "/srv/project"})
    assert resource.settings["pool"] == "warehouse"


def test_a_dialect_that_is_not_installed_is_named() -> None:
    with pytest.raises(ResourceError, match="no SQLAlchemy dialect for 'nosuchdb' is installed"):
        sql({"url": "nosuchdb://host/db"}).open()
    with pytest.raises(ResourceError, match="bad url"):
        sql({"url": "not a url"}).open()
