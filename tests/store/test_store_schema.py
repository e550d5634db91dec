"""Schema, migrations, engine configuration and multi-process behaviour of the store."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import legato
from legato.domain.access import (
    AuditRecord,
    SecretRecord,
    SessionRecord,
    TokenRecord,
    UserRecord,
)
from legato.domain.records import AttemptRecord, Changes, EventRecord, RunRecord, StoreError
from legato.domain.records import TaskRunRecord as TaskRun
from legato.store import db, migrate
from legato.store.schema import (
    UTCDateTime,
    api_tokens,
    attempts,
    audit_log,
    declare_partial_indexes,
    events,
    metadata,
    runs,
    secrets,
    sessions,
    task_runs,
    users,
)
from legato.store.store import Store
from tests.store.store_testkit import T0, Records

SRC = str(Path(legato.__file__).resolve().parents[1])


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_head_revision_is_alembics_head() -> None:
    assert migrate.script_head() == migrate.HEAD_REVISION


def test_columns_follow_record_fields() -> None:
    # Rows are turned into records positionally (legato.store.rows).
    for table, record in [
        (runs, RunRecord),
        (task_runs, TaskRun),
        (attempts, AttemptRecord),
        (events, EventRecord),
        (users, UserRecord),
        (sessions, SessionRecord),
        (api_tokens, TokenRecord),
        (secrets, SecretRecord),
        (audit_log, AuditRecord),
    ]:
        assert [c.name for c in table.c] == [f.name for f in dataclasses.fields(record)]


def test_fresh_database_is_at_head_with_all_tables(store: Store) -> None:
    engine = db.create_engine(store.url)
    try:
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD_REVISION
            names = set(inspect(conn).get_table_names())
        assert names >= {"runs", "task_runs", "attempts", "events", "snapshots"}
    finally:
        engine.dispose()


def test_migrations_create_exactly_the_schema_module(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    declare_partial_indexes()  # what the migrations create, declared
    engine = db.create_engine(store.url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_postgres_url_with_search_path_keeps_tables_in_that_schema(pg_url: str) -> None:
    schema = pg_url.rsplit("%3D", 1)[1]
    with Store.open(pg_url) as store:
        assert store.url == pg_url
        engine = db.create_engine(pg_url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_schema()")).scalar() == schema
                assert "runs" not in inspect(conn).get_table_names(schema="public")
                assert "runs" in inspect(conn).get_table_names(schema=schema)
        finally:
            engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_opening_a_current_database_does_not_import_alembic(
    backend: str, store_url_for: Callable[[str], str]
) -> None:
    url = store_url_for(backend)
    probe = f"""
        import sys
        from legato.store.store import Store
        with Store.open({url!r}) as store:
            store.browse.list_runs()
        print("alembic" in sys.modules)
    """
    first = _python(probe)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "True"  # a new database is migrated with Alembic
    again = _python(probe)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "False"


def test_database_from_a_newer_legato_is_refused(store: Store) -> None:
    engine = db.create_engine(store.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="9999"):
        Store.open(store.url)
    with pytest.raises(StoreError, match="9999"):
        Store.open(store.url, migrate=False)


def test_migrate_false_refuses_an_empty_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="migrate=True"):
        Store.open(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)


def test_utc_datetime_type() -> None:
    kind = UTCDateTime()
    dialect = db.create_engine("sqlite://").dialect
    east = datetime(2024, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=3)))
    assert kind.process_bind_param(east, dialect) == datetime(2024, 1, 1, 0, 0)
    assert kind.process_bind_param(None, dialect) is None
    assert kind.process_result_value(datetime(2024, 1, 1), dialect) == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="naive datetime 2024-01-01T00:00:00"):
        kind.process_bind_param(datetime(2024, 1, 1), dialect)
    with pytest.raises(TypeError):
        kind.process_bind_param("2024-01-01", dialect)


def test_url_forms() -> None:
    assert db.normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert db.backend_of("postgresql+psycopg://u@h/d") == "postgresql"
    assert db.backend_of("sqlite:///x.db") == "sqlite"
    with pytest.raises(ValueError, match="unsupported database URL"):
        db.normalize_url("mysql://u@h/d")
    with pytest.raises(ValueError, match="unsupported"):
        db.normalize_url("postgresql+psycopg2://u@h/d")


def _pragmas(url: str) -> dict[str, object]:
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()


def test_sqlite_pragmas_and_parent_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(db.SQLITE_SYNCHRONOUS_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'legato.db'}"
    assert _pragmas(url) == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
        "busy_timeout": 10000,
    }
    assert (tmp_path / "deep" / "er" / "legato.db").exists()
    monkeypatch.setenv(db.SQLITE_SYNCHRONOUS_ENV, "full")
    assert _pragmas(url)["synchronous"] == 2
    monkeypatch.setenv(db.SQLITE_SYNCHRONOUS_ENV, "sometimes")
    with pytest.raises(ValueError, match=db.SQLITE_SYNCHRONOUS_ENV):
        db.create_engine(url)


def test_sqlite_in_memory_store_works() -> None:
    with Store.open("sqlite:///:memory:") as store:
        store.runs.save_snapshot("p", "v", {"a": 1}, T0)
        assert store.runs.get_snapshot("p", "v") == {"a": 1}


def _hammer(url: str, worker: int, count: int) -> None:
    """Create, lease and step ``count`` runs; any 'database is locked' error fails the test."""
    import random

    from tests.store.store_testkit import Records as _Records

    rec = _Records(random.Random(worker))
    with Store.open(url) as store:
        for i in range(count):
            # run_key and request_cancel make transactions that read before they write: the
            # pattern that deadlocks (SQLITE_BUSY) without BEGIN IMMEDIATE.
            run = rec.run(pipeline=f"w{worker}", run_key=f"w{worker}-{i}")
            store.runs.create_run(run, [rec.task(run, "a")], [])
            store.runs.request_cancel(run.id, rec.clock)
            owner = f"driver-{worker}"
            assert store.runs.acquire_lease(
                run.id, owner, rec.clock + timedelta(minutes=1), rec.clock
            )
            done = rec.task(run, "a", state="succeeded", attempt=1)
            store.runs.apply(Changes(run.id, owner, rec.clock, task_runs=[done]))
            store.browse.list_runs(limit=5)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_processes_migrate_and_write(
    backend: str, store_url_for: Callable[[str], str]
) -> None:
    url = store_url_for(backend)  # not migrated yet: the workers race to do it
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_hammer, args=(url, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store.open(url) as store:
        assert [s.run_count for s in store.browse.pipelines_summary()] == [40, 40, 40, 40]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_store_usable_in_forked_child_after_after_fork(store: Store, rec: Records) -> None:
    run = rec.run()
    store.runs.create_run(run, [], [])  # the parent's pool now holds a connection
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            store.after_fork()
            store.runs.request_cancel(run.id, T0)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own connections were left intact by the child.
    assert store.runs.get_run(run.id).cancel_requested


def test_postgresql_tls_parameters_reach_the_driver() -> None:
    # docs/deploy.md: TLS to PostgreSQL is set in the store URL's query, passed to psycopg.
    url = (
        "postgresql://legato@db.example.com:5432/legato?sslmode=verify-full"
        "&sslrootcert=/etc/legato/pg-ca.pem&sslcert=/etc/legato/client.pem"
        "&sslkey=/etc/legato/client-key.pem"
    )
    tls = {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/legato/pg-ca.pem",
        "sslcert": "/etc/legato/client.pem",
        "sslkey": "/etc/legato/client-key.pem",
    }
    parsed = db.normalize_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert dict(parsed.query) == tls
    engine = db.create_engine(url)  # no connection is made until one is used
    try:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
        assert {k: kwargs[k] for k in tls} == tls
        assert kwargs["host"] == "db.example.com" and kwargs["dbname"] == "legato"
    finally:
        engine.dispose()
