"""Code locations in the store, and upgrading a database made by the previous schema."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from legato.domain.records import CodeLocationRecord
from legato.store import db, migrate
from legato.store.store import Store
from tests.store.store_testkit import T0, Records


def test_code_location_is_replaced_by_each_load(store: Store) -> None:
    assert store.runs.get_code_location("retail") is None
    first = CodeLocationRecord(
        "retail",
        "/srv/retail",
        T0,
        {"daily": "abc"},
        [{"module": "broken", "message": "x.py:1: SyntaxError", "traceback": ""}],
    )
    store.runs.save_code_location(first)
    assert store.runs.get_code_location("retail") == first
    second = CodeLocationRecord(
        "retail", "/srv/retail", T0 + timedelta(minutes=1), {"daily": "def", "weekly": "def"}, []
    )
    store.runs.save_code_location(second)
    assert store.runs.get_code_location("retail") == second


def test_two_processes_loading_the_project_at_once_both_save_it(store: Store) -> None:
    # Two schedulers starting together record the same location at the same moment.
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def save(i: int) -> None:
        try:
            for n in range(30):
                barrier.wait(timeout=30)
                at = T0 + timedelta(seconds=n)
                loc = CodeLocationRecord("p", "/srv/p", at, {"a": str(i)}, [])
                store.runs.save_code_location(loc)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = store.runs.get_code_location("p")
    assert found is not None and found.loaded_at == T0 + timedelta(seconds=29)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_the_previous_revision_keeps_runs(
    backend: str, store_url_for: Callable[[str], str], rec: Records
) -> None:
    url = store_url_for(backend)
    engine = db.create_engine(url)
    run = rec.run()
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            assert migrate.current_revision(conn) == "0002"
            assert not inspect(conn).has_table("backfills")
            # A run as the previous schema held it (no queue or origin columns yet).
            conn.execute(
                text(
                    "INSERT INTO runs (id, pipeline, state, params, code_version, created_at,"
                    " cancel_requested) VALUES (:id, :p, 'queued', '{}', 'v1', :at, false)"
                ),
                {"id": run.id, "p": run.pipeline, "at": T0.replace(tzinfo=None)},
            )
    finally:
        engine.dispose()

    upgraded = Store.open(url)
    try:
        with upgraded._engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD_REVISION
        got = upgraded.runs.get_run(run.id)
        assert (got.pipeline, got.state, got.created_at) == (run.pipeline, "queued", T0)
        assert (got.priority, got.queue_position, got.origin, got.backfill_id) == (0, 0, None, None)
        upgraded.runs.save_code_location(CodeLocationRecord("p", "/p", T0, {}, []))
        assert upgraded.runs.get_code_location("p") is not None
    finally:
        upgraded.close()
