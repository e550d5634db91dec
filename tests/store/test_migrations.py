"""``legato db upgrade`` / ``legato db current`` and upgrading stores that hold data.

Every test works on its own empty database: a SQLite file in ``tmp_path`` or a fresh
PostgreSQL schema (``store_url_for``: ``CREATE SCHEMA`` with a random name, the URL's
``search_path`` pointing at it, ``DROP SCHEMA ... CASCADE`` afterwards). The commands run as
the installed ``legato`` executable, as an operator would run them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url

from legato.domain.backfill_keys import BackfillKeys
from legato.domain.records import (
    AttemptRecord,
    Changes,
    CodeLocationRecord,
    NewEvent,
    RunRecord,
    StoreError,
    TaskRunRecord,
)
from legato.domain.states import BackfillState, RunState, TaskState
from legato.security.audit import GENESIS, AuditEntry, entry_hash
from legato.store import db, migrate
from legato.store.schema import declare_partial_indexes, metadata
from legato.store.store import Store
from tests.helpers import LEGATO, cli, make_project
from tests.store.store_testkit import Records

BACKENDS = ("sqlite", "postgresql")
HEAD = migrate.HEAD_REVISION
REVISIONS = migrate.known_revisions()
# Every revision a store could still be at: new migrations join this list by themselves.
OLD_REVISIONS = REVISIONS[:-1]

# An ambient LEGATO_DATABASE_URL would override the project's [store] url in the commands.
NO_ENV_URL = {"LEGATO_DATABASE_URL": ""}


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = db.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    with engine_for(url) as engine, engine.connect() as conn:
        return migrate.current_revision(conn)


def db_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return cli("db", *args, "--url", url, env=NO_ENV_URL)


def test_revision_list_ends_at_the_head() -> None:
    assert REVISIONS[-1] == HEAD
    assert len(set(REVISIONS)) == len(REVISIONS) >= 2


# -- the whole schema from nothing ---------------------------------------------------------------


def _assert_schema_is_the_schema_module(url: str) -> None:
    """Every table of legato.store.schema exists with its columns, keys and indexes."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    declare_partial_indexes()  # what the migrations create, declared
    with engine_for(url) as engine, engine.connect() as conn:
        insp = inspect(conn)
        found_tables = set(insp.get_table_names())
        for table in metadata.sorted_tables:
            name = table.name
            assert name in found_tables, f"table {name} missing"
            columns = insp.get_columns(name)
            # Order matters: rows become records positionally (legato.store.rows).
            assert [c["name"] for c in columns] == [c.name for c in table.columns], name
            assert {c["name"]: c["nullable"] for c in columns} == {
                c.name: c.nullable for c in table.columns
            }, name
            assert insp.get_pk_constraint(name)["constrained_columns"] == [
                c.name for c in table.primary_key.columns
            ], name
            indexes = {
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in insp.get_indexes(name)
                # PostgreSQL lists the index behind a UNIQUE constraint too; compared below.
                if "duplicates_constraint" not in ix
            }
            assert indexes == {
                (ix.name, tuple(c.name for c in ix.columns), bool(ix.unique))
                for ix in table.indexes
            }, name
            uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(name)}
            assert uniques == {
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if u.__class__.__name__ == "UniqueConstraint"
            }, name
            fks = {
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in insp.get_foreign_keys(name)
            }
            assert fks == {
                (
                    tuple(c.name for c in fk.columns),
                    fk.referred_table.name,
                    tuple(e.column.name for e in fk.elements),
                    fk.ondelete,
                )
                for fk in table.foreign_key_constraints
            }, name
        # And what the inspector comparison above does not cover (column types, defaults).
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_upgrade_creates_the_schema_in_an_empty_database(
    backend: str, store_url_for: Callable[[str], str]
) -> None:
    url = store_url_for(backend)
    done = db_cli("upgrade", url=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f": empty -> {HEAD}")
    assert revision_of(url) == HEAD
    _assert_schema_is_the_schema_module(url)

    now = db_cli("current", url=url)
    assert now.returncode == 0, now.stderr
    assert f"at {HEAD} (head)" in now.stdout

    again = db_cli("upgrade", url=url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f": already at {HEAD}")


def test_db_upgrade_reads_the_project_and_not_its_pipeline_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    project = make_project(
        tmp_path / "proj",
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n",
        extra='\n[store]\nurl = "sqlite:///state/store.db"\n',
    )
    done = cli("db", "upgrade", project=project, env=NO_ENV_URL)
    assert done.returncode == 0, done.stderr
    # The relative SQLite path is the project's, as for every other command.
    database = project / "state" / "store.db"
    assert f"store sqlite:///{database}: empty -> {HEAD}" in done.stdout
    assert revision_of(f"sqlite:///{database}") == HEAD
    now = cli("db", "current", project=project, env=NO_ENV_URL)
    assert now.returncode == 0 and f"at {HEAD} (head)" in now.stdout
    assert not marker.exists(), "legato db imported the project's pipeline modules"


@pytest.mark.parametrize("backend", BACKENDS)
def test_environment_url_wins_over_the_project(
    backend: str, store_url_for: Callable[[str], str], tmp_path: Path
) -> None:
    url = store_url_for(backend)
    project = make_project(tmp_path / "proj", "", extra='\n[store]\nurl = "sqlite:///p.db"\n')
    env = {"LEGATO_DATABASE_URL": url}
    done = cli("db", "upgrade", project=project, env=env)
    assert done.returncode == 0, done.stderr
    assert revision_of(url) == HEAD
    assert not (project / "p.db").exists()
    # Without a project folder the environment variable alone is enough.
    bare = tmp_path / "no-project"
    bare.mkdir()
    now = cli("db", "current", project=bare, env=env)
    assert now.returncode == 0 and f"at {HEAD} (head)" in now.stdout


def test_password_is_not_printed(pg_url: str) -> None:
    parsed = make_url(pg_url)
    secret = parsed.password or "n0t-printed-s3cret"  # trust auth ignores a made-up one
    url = parsed.set(password=secret).render_as_string(hide_password=False)
    for args in (("upgrade",), ("current",)):
        done = db_cli(*args, url=url)
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr
        assert ":***@" in done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_upgrades_migrate_once(
    backend: str, store_url_for: Callable[[str], str]
) -> None:
    url = store_url_for(backend)
    env = {**os.environ, **NO_ENV_URL}
    procs = [
        subprocess.Popen(
            [LEGATO, "db", "upgrade", "--url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    lines = sorted(out.strip().rsplit(": ", 1)[1] for _, out, _ in results)
    # The lock makes the latecomers find the work done, and say so.
    assert lines == [f"already at {HEAD}"] * 3 + [f"empty -> {HEAD}"]
    assert revision_of(url) == HEAD


# -- stores at every earlier revision, with data -------------------------------------------------

T = datetime(2024, 5, 1, 12, 0)  # naive UTC, as the columns hold it
RUN_1 = "0190f2a0c0de00000001"
RUN_2 = "0190f2a0c0de00000002"


def _at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _insert(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    # Plain SQL, not legato.store.schema: the tables are as that old revision made them.
    columns = list(rows[0])
    conn.execute(
        text(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})"
        ),
        rows,
    )


def _reached(revision: str, wanted: str) -> bool:
    return REVISIONS.index(revision) >= REVISIONS.index(wanted)


def _write_rows_valid_at(conn: Connection, revision: str) -> None:
    """Rows as a Legato whose schema was ``revision`` wrote them: two runs and all they hold."""
    run_base = {
        "partition": None,
        "started_at": None,
        "finished_at": None,
        "parent_run_id": None,
        "rerun_kind": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "cancel_requested": False,
        "error": None,
        "run_key": None,
    }
    _insert(
        conn,
        "runs",
        [
            {
                **run_base,
                "id": RUN_1,
                "pipeline": "etl",
                "state": "running",
                "params": '{"day":"2024-05-01"}',
                "partition": "2024-05-01",
                "code_version": "v1",
                "created_at": T,
                "started_at": _at(1),
                # Its driver died long ago: a current driver must be able to take it over.
                "lease_owner": "old-host:123",
                "lease_expires_at": _at(15),
                "run_key": "schedule:nightly:2024-05-01",
            },
            {
                **run_base,
                "id": RUN_2,
                "pipeline": "etl",
                "state": "failed",
                "params": "{}",
                "code_version": "v1",
                "created_at": _at(60),
                "started_at": _at(61),
                "finished_at": _at(70),
                "parent_run_id": RUN_1,
                "rerun_kind": "from_failure",
                "cancel_requested": True,
                "error": "task load[0] failed",
            },
        ],
    )
    task_base = {
        "map_index": None,
        "attempt": 0,
        "started_at": None,
        "finished_at": None,
        "next_attempt_at": None,
        "result_uri": None,
        "result_format": None,
        "item_count": None,
        "reused_from": None,
        "error": None,
        "worker": None,
    }
    _insert(
        conn,
        "task_runs",
        [
            {
                **task_base,
                "run_id": RUN_1,
                "task_key": "extract",
                "node": "extract",
                "state": "succeeded",
                "attempt": 2,
                "started_at": _at(5),
                "finished_at": _at(6),
                "result_uri": "file:///results/extract.pkl",
                "result_format": "pickle",
                "item_count": 2,
                "worker": "w1",
            },
            {
                **task_base,
                "run_id": RUN_1,
                "task_key": "load[0]",
                "node": "load",
                "map_index": 0,
                "state": "running",
                "attempt": 1,
                "started_at": _at(7),
                "worker": "w2",
            },
            {
                **task_base,
                "run_id": RUN_1,
                "task_key": "load[1]",
                "node": "load",
                "map_index": 1,
                "state": "up_for_retry",
                "attempt": 1,
                "next_attempt_at": _at(30),
            },
            {
                **task_base,
                "run_id": RUN_2,
                "task_key": "extract",
                "node": "extract",
                "state": "succeeded",
                "reused_from": RUN_1,
            },
        ],
    )
    attempt_base = {"error": None, "traceback": None, "log_path": None, "worker": None}
    _insert(
        conn,
        "attempts",
        [
            {
                **attempt_base,
                "run_id": RUN_1,
                "task_key": "extract",
                "number": 1,
                "outcome": "failed",
                "started_at": _at(2),
                "finished_at": _at(3),
                "error": "ConnectionError: reset",
                "traceback": "Traceback (most recent call last): ...",
                "log_path": "logs/extract.1.log",
                "worker": "w1",
            },
            {
                **attempt_base,
                "run_id": RUN_1,
                "task_key": "extract",
                "number": 2,
                "outcome": "succeeded",
                "started_at": _at(5),
                "finished_at": _at(6),
            },
        ],
    )
    event_base = {"task_key": None, "old_state": None, "new_state": None, "message": None}
    _insert(
        conn,
        "events",
        [
            {**event_base, "run_id": RUN_1, "kind": "run_state", "old_state": "queued",
             "new_state": "running", "at": _at(1)},
            {**event_base, "run_id": RUN_1, "kind": "lease", "at": _at(1),
             "message": "old-host:123"},
            {**event_base, "run_id": RUN_1, "task_key": "extract", "kind": "attempt",
             "at": _at(3), "message": "ConnectionError: reset"},
            {**event_base, "run_id": RUN_1, "task_key": "extract", "kind": "task_state",
             "old_state": "running", "new_state": "succeeded", "at": _at(6)},
            {**event_base, "run_id": RUN_2, "kind": "run_state", "old_state": "running",
             "new_state": "failed", "at": _at(70)},
        ],
    )  # fmt: skip
    _insert(
        conn,
        "snapshots",
        [{"pipeline": "etl", "code_version": "v1", "snapshot": '{"nodes":["extract","load"]}',
          "created_at": T}],
    )  # fmt: skip
    if _reached(revision, "0002"):
        _insert(
            conn,
            "code_locations",
            [{"name": "proj", "root": "/srv/proj", "loaded_at": T,
              "pipelines": '{"etl":"v1"}', "errors": "[]"}],
        )  # fmt: skip
    if _reached(revision, "0003"):
        conn.execute(
            text(
                "UPDATE runs SET priority = 5, queue_position = 123, origin = 'schedule:nightly'"
                " WHERE id = :id"
            ),
            {"id": RUN_1},
        )
        conn.execute(
            text("UPDATE runs SET origin = 'backfill:bf1', backfill_id = 'bf1' WHERE id = :id"),
            {"id": RUN_2},
        )
        _insert(
            conn,
            "schedule_states",
            [{"pipeline": "etl", "name": "nightly", "cursor": T, "paused": True,
              "updated_at": T}],
        )  # fmt: skip
        _insert(
            conn,
            "backfills",
            [{"id": "bf1", "pipeline": "etl", "state": "running", "keys": '["2024-05-01"]',
              "next_index": 1, "max_concurrent": 2, "priority": 0, "params": "{}",
              "created_at": T, "updated_at": T, "message": None}],
        )  # fmt: skip
        token = WEBHOOK_TOKEN if not _reached(revision, "0009") else _sha256(WEBHOOK_TOKEN)
        _insert(
            conn,
            "trigger_states",
            [{"pipeline": "etl", "name": "hook", "kind": "webhook", "cursor": None,
              "paused": False, "token": token, "updated_at": T}],
        )  # fmt: skip
    if _reached(revision, "0004"):
        _insert(
            conn,
            "daemons",
            [{"id": "old-host:123", "kind": "scheduler", "host": "old-host", "pid": 123,
              "version": "0.1.0", "url": None, "started_at": T, "heartbeat_at": T}],
        )  # fmt: skip
    if _reached(revision, "0007"):
        _write_security_rows(conn)


WEBHOOK_TOKEN = "a-webhook-token-from-before"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


AUDITED = AuditEntry(_aware(T), "ann", "password", "10.0.0.7", "run.launch", RUN_1, "ok",
                     {"params": {"day": "2024-05-01"}})  # fmt: skip


def _write_security_rows(conn: Connection) -> None:
    """A user, a session, a token and a secret, and one audit row with the head on it."""
    _insert(
        conn,
        "users",
        [{"name": "ann", "role": "admin", "password_hash": "$argon2id$x", "source": "local",
          "disabled": False, "scope": '["etl*"]', "created_at": T, "updated_at": T,
          "last_sign_in_at": None}],
    )  # fmt: skip
    _insert(
        conn,
        "sessions",
        [{"session_hash": "a" * 64, "user_name": "ann", "created_at": T, "expires_at": _at(3600),
          "last_seen_at": T, "csrf": "c", "method": "password", "source": "::1",
          "revoked_at": None}],
    )  # fmt: skip
    _insert(
        conn,
        "api_tokens",
        [{"id": "tok0000001", "name": "ci", "secret_hash": "b" * 64, "role": "operator",
          "scope": "[]", "created_by": "ann", "created_at": T, "expires_at": None,
          "last_used_at": None, "revoked_at": None}],
    )  # fmt: skip
    _insert(
        conn,
        "secrets",
        [{"name": "db_password", "sealed": "v1.k1.AAAA", "key_id": "k1", "created_at": T,
          "updated_at": T, "updated_by": "ann", "sealed_at": T}],
    )  # fmt: skip
    digest = entry_hash(GENESIS, 1, AUDITED)
    _insert(
        conn,
        "audit_log",
        [{"seq": 1, "at": T, "actor": "ann", "auth": "password", "source": "10.0.0.7",
          "action": "run.launch", "target": RUN_1, "outcome": "ok",
          "detail": '{"params":{"day":"2024-05-01"}}', "prev_hash": GENESIS, "hash": digest}],
    )  # fmt: skip
    conn.execute(text("UPDATE audit_head SET seq = 1, hash = :h"), {"h": digest})


def _expected_runs(revision: str) -> list[RunRecord]:
    queued_at_0003 = _reached(revision, "0003")
    return [
        RunRecord(
            id=RUN_1,
            pipeline="etl",
            state=RunState.RUNNING,
            params={"day": "2024-05-01"},
            partition="2024-05-01",
            code_version="v1",
            created_at=_aware(T),
            started_at=_aware(_at(1)),
            lease_owner="old-host:123",
            lease_expires_at=_aware(_at(15)),
            run_key="schedule:nightly:2024-05-01",
            # Columns added by 0003 come with their defaults for rows written before it.
            priority=5 if queued_at_0003 else 0,
            queue_position=123 if queued_at_0003 else 0,
            origin="schedule:nightly" if queued_at_0003 else None,
        ),
        RunRecord(
            id=RUN_2,
            pipeline="etl",
            state=RunState.FAILED,
            params={},
            partition=None,
            code_version="v1",
            created_at=_aware(_at(60)),
            started_at=_aware(_at(61)),
            finished_at=_aware(_at(70)),
            parent_run_id=RUN_1,
            rerun_kind="from_failure",
            cancel_requested=True,
            error="task load[0] failed",
            origin="backfill:bf1" if queued_at_0003 else None,
            backfill_id="bf1" if queued_at_0003 else None,
        ),
    ]


def _assert_rows_survived(store: Store, revision: str) -> None:
    assert [store.runs.get_run(RUN_1), store.runs.get_run(RUN_2)] == _expected_runs(revision)
    assert store.runs.get_task_runs(RUN_1) == [
        TaskRunRecord(
            RUN_1, "extract", "extract", None, TaskState.SUCCEEDED, 2, _aware(_at(5)),
            _aware(_at(6)), None, "file:///results/extract.pkl", "pickle", 2, None, None, "w1",
        ),
        TaskRunRecord(
            RUN_1, "load[0]", "load", 0, TaskState.RUNNING, 1, _aware(_at(7)), worker="w2"
        ),
        TaskRunRecord(
            RUN_1, "load[1]", "load", 1, TaskState.UP_FOR_RETRY, 1,
            next_attempt_at=_aware(_at(30)),
        ),
    ]  # fmt: skip
    assert store.runs.get_task_runs(RUN_2) == [
        TaskRunRecord(RUN_2, "extract", "extract", None, TaskState.SUCCEEDED, reused_from=RUN_1)
    ]
    assert store.runs.get_attempts(RUN_1) == [
        AttemptRecord(
            RUN_1, "extract", 1, "failed", _aware(_at(2)), _aware(_at(3)),
            "ConnectionError: reset", "Traceback (most recent call last): ...",
            "logs/extract.1.log", "w1",
        ),
        AttemptRecord(RUN_1, "extract", 2, "succeeded", _aware(_at(5)), _aware(_at(6))),
    ]  # fmt: skip
    events = store.runs.get_events(RUN_1)
    assert [(e.task_key, e.kind, e.old_state, e.new_state, e.at, e.message) for e in events] == [
        (None, "run_state", "queued", "running", _aware(_at(1)), None),
        (None, "lease", None, None, _aware(_at(1)), "old-host:123"),
        ("extract", "attempt", None, None, _aware(_at(3)), "ConnectionError: reset"),
        ("extract", "task_state", "running", "succeeded", _aware(_at(6)), None),
    ]
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert [e.new_state for e in store.runs.get_events(RUN_2)] == ["failed"]
    assert store.runs.get_snapshot("etl", "v1") == {"nodes": ["extract", "load"]}
    location = store.runs.get_code_location("proj")
    if _reached(revision, "0002"):
        assert location == CodeLocationRecord("proj", "/srv/proj", _aware(T), {"etl": "v1"}, [])
    else:
        assert location is None
    if _reached(revision, "0003"):
        assert store.schedules.schedule_states()[("etl", "nightly")].paused is True
        backfill = store.backfills.get_backfill("bf1")
        # Kept as a list of keys before ranges were: they read as keys named one by one.
        assert (backfill.state, backfill.keys) == (
            BackfillState.RUNNING, BackfillKeys.named(["2024-05-01"])
        )
    if _reached(revision, "0003"):
        # Kept in clear before 0009, as its hash since: the caller's token still works.
        hook = store.triggers.trigger_states()[("etl", "hook")]
        assert hook.token == _sha256(WEBHOOK_TOKEN)
    if _reached(revision, "0007"):
        _assert_security_rows_survived(store)


def _assert_security_rows_survived(store: Store) -> None:
    user = store.users.get_user("ann")
    assert user is not None and (user.role, user.scope) == ("admin", ("etl*",))
    session = store.access.get_session("a" * 64)
    assert session is not None and session.is_live(_aware(_at(60)))
    token = store.access.get_token("tok0000001")
    assert token is not None and token.name == "ci"
    secret = store.secrets.get_secret("db_password")
    assert secret is not None and secret.sealed == "v1.k1.AAAA"
    assert store.audit.verify() is None
    assert store.audit.append(dataclasses.replace(AUDITED, action="sign_in")) == 2
    assert store.audit.verify() is None


def _assert_current_store_works(store: Store, rec: Records) -> None:
    """Create, lease and step a new run; take over an old run's long-expired lease."""
    old_event_ids = [e.id for run in (RUN_1, RUN_2) for e in store.runs.get_events(run)]
    now = datetime.now(UTC)
    run = rec.run(created_at=now)
    store.runs.create_run(run, [rec.task(run, "a")], [rec.event(run, "run_state", at=now)])
    assert store.runs.acquire_lease(run.id, "new-driver", now + timedelta(seconds=30), now)
    done = rec.task(run, "a", state=TaskState.SUCCEEDED, attempt=1, started_at=now,
                    finished_at=now)  # fmt: skip
    store.runs.apply(
        Changes(
            run.id,
            "new-driver",
            now + timedelta(seconds=30),
            task_runs=[done],
            events=[NewEvent(run.id, "a", "task_state", "running", "succeeded", now)],
        )
    )
    assert store.runs.get_task_runs(run.id) == [done]
    new_ids = [e.id for e in store.runs.get_events(run.id)]
    # On PostgreSQL the id sequence must have moved past the rows the old Legato wrote.
    assert len(new_ids) == 3 and min(new_ids) > max(old_event_ids)
    taken = store.runs.acquire_lease(RUN_1, "new-driver", now + timedelta(seconds=30), now)
    assert taken is not None and taken.lease_owner == "new-driver"


@pytest.mark.parametrize("revision", OLD_REVISIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_db_upgrade_keeps_what_an_older_revision_stored(
    backend: str, revision: str, store_url_for: Callable[[str], str], rec: Records
) -> None:
    url = store_url_for(backend)
    with engine_for(url) as engine:
        assert migrate.upgrade(engine, revision) == migrate.Migration(None, revision)
        with engine.begin() as conn:
            _write_rows_valid_at(conn, revision)

    with pytest.raises(StoreError, match="legato db upgrade"):
        Store.open(url, migrate=False)

    done = db_cli("upgrade", url=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f": {revision} -> {HEAD}")
    now = db_cli("current", url=url)
    assert now.returncode == 0 and f"at {HEAD} (head)" in now.stdout

    with Store.open(url, migrate=False) as store:
        _assert_rows_survived(store, revision)
        _assert_current_store_works(store, rec)
    _assert_schema_is_the_schema_module(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_upgrade_to_a_given_revision_then_on_to_head(
    backend: str, store_url_for: Callable[[str], str]
) -> None:
    url = store_url_for(backend)
    first, middle = REVISIONS[0], OLD_REVISIONS[-1]
    done = cli("db", "upgrade", "--url", url, "--revision", first, env=NO_ENV_URL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f": empty -> {first}")
    assert revision_of(url) == first
    done = cli("db", "upgrade", "--url", url, "-r", middle, env=NO_ENV_URL)
    assert done.stdout.strip().endswith(f": {first} -> {middle}") or first == middle
    # Asking for a revision the store is past changes nothing: there are no downgrades.
    back = cli("db", "upgrade", "--url", url, "-r", first, env=NO_ENV_URL)
    assert back.returncode == 0 and back.stdout.strip().endswith(f": already at {middle}")
    assert revision_of(url) == middle
    unknown = cli("db", "upgrade", "--url", url, "-r", "nosuchrev", env=NO_ENV_URL)
    assert unknown.returncode == 2 and "nosuchrev" in unknown.stderr
    assert revision_of(url) == middle


REBUILD_RUNS = """
import sqlalchemy as sa
from alembic import op

revision = "9000"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What a future migration that alters or drops a column of runs does on SQLite.
    with op.batch_alter_table("runs", recreate="always") as batch:
        batch.alter_column("error", existing_type=sa.Text(), nullable=True)
"""


def test_sqlite_table_rebuild_keeps_the_rows_that_reference_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batch mode copies runs, drops it and renames the copy: with foreign keys enforced the
    # drop would cascade-delete every task run, attempt and event (migrate.upgrade turns
    # enforcement off for the migration).
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9000_rebuild_runs.py").write_text(REBUILD_RUNS.format(head=HEAD))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", scripts)
    url = f"sqlite:///{tmp_path / 'legato.db'}"
    with engine_for(url) as engine:
        migrate.upgrade(engine, HEAD)
        with engine.begin() as conn:
            _write_rows_valid_at(conn, HEAD)
        assert migrate.upgrade(engine) == migrate.Migration(HEAD, "9000")
        with engine.connect() as conn:
            counts = {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("runs", "task_runs", "attempts", "events")
            }
            assert counts == {"runs": 2, "task_runs": 4, "attempts": 2, "events": 5}
            # The pooled connection is enforcing foreign keys again.
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# -- stores behind (or ahead of) this Legato -----------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_current_exits_1_and_names_both_revisions_when_behind(
    backend: str, store_url_for: Callable[[str], str]
) -> None:
    url = store_url_for(backend)
    behind = OLD_REVISIONS[-1]
    with engine_for(url) as engine:
        migrate.upgrade(engine, behind)
    now = db_cli("current", url=url)
    assert now.returncode == 1, now.stdout + now.stderr
    assert f"at {behind}, head is {HEAD}" in now.stdout
    assert "legato db upgrade" in now.stdout
    with pytest.raises(StoreError) as refused:
        Store.open(url, migrate=False)
    assert f"'{behind}'" in str(refused.value) and f"'{HEAD}'" in str(refused.value)
    assert "legato db upgrade" in str(refused.value)
    assert revision_of(url) == behind  # neither the check nor the refusal migrated it


@pytest.mark.parametrize("backend", BACKENDS)
def test_db_current_on_an_empty_database(backend: str, store_url_for: Callable[[str], str]) -> None:
    url = store_url_for(backend)
    now = db_cli("current", url=url)
    assert now.returncode == 1, now.stdout + now.stderr
    expected = "no database file yet" if backend == "sqlite" else "no schema yet"
    assert expected in now.stdout and HEAD in now.stdout
    if backend == "sqlite":
        # Looking must not create the file a typo pointed at.
        assert not Path(make_url(url).database or "").exists()
    with pytest.raises(StoreError, match=r"no Legato schema yet.*legato db upgrade"):
        Store.open(url, migrate=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_from_a_newer_legato(backend: str, store_url_for: Callable[[str], str]) -> None:
    url = store_url_for(backend)
    with engine_for(url) as engine:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    now = db_cli("current", url=url)
    assert now.returncode == 1 and "at 9999, unknown to this Legato" in now.stdout
    up = db_cli("upgrade", url=url)
    assert up.returncode == 2 and "'9999'" in up.stderr and "newer Legato" in up.stderr
    with pytest.raises(StoreError, match="newer Legato"):
        Store.open(url, migrate=False)
    assert revision_of(url) == "9999"


def test_one_line_errors(tmp_path: Path) -> None:
    bad_scheme = db_cli("upgrade", url="mysql://u:pw@h/d")
    assert bad_scheme.returncode == 2
    assert "unsupported database URL scheme" in bad_scheme.stderr and "pw" not in bad_scheme.stderr
    unreachable = db_cli("current", url="postgresql://nobody:pw@127.0.0.1:1/x")
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("error: cannot use the store postgresql://nobody:***@")
    assert "Traceback" not in unreachable.stderr
    no_project = cli("db", "upgrade", project=tmp_path, env=NO_ENV_URL)
    assert no_project.returncode == 2 and "--url" in no_project.stderr
