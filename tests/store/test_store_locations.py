"""Code locations in the store, and upgrading a database made by the previous schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import inspect

from legato.store import db, migrate
from legato.store.records import CodeLocationRecord
from legato.store.store import Store
from tests.store.store_testkit import T0, Records


def test_code_location_is_replaced_by_each_load(store: Store) -> None:
    assert store.get_code_location("retail") is None
    first = CodeLocationRecord(
        "retail",
        "/srv/retail",
        T0,
        {"daily": "abc"},
        [{"module": "broken", "message": "x.py:1: SyntaxError", "traceback": ""}],
    )
    store.save_code_location(first)
    assert store.get_code_location("retail") == first
    second = CodeLocationRecord(
        "retail", "/srv/retail", T0 + timedelta(minutes=1), {"daily": "def", "weekly": "def"}, []
    )
    store.save_code_location(second)
    assert store.get_code_location("retail") == second


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_the_previous_revision_keeps_runs(
    backend: str, store_url_for: Callable[[str], str], rec: Records
) -> None:
    url = store_url_for(backend)
    engine = db.create_engine(url)
    try:
        migrate.upgrade(engine, "0001")
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == "0001"
            assert not inspect(conn).has_table("code_locations")
    finally:
        engine.dispose()
    # A store of the previous schema, with a run in it, as an older Legato left it.
    old = Store(db.create_engine(url))
    run = rec.run()
    old.create_run(run, [rec.task(run, "a")])
    old.close()

    upgraded = Store.open(url)
    try:
        with upgraded._engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD_REVISION
        assert upgraded.get_run(run.id) == run
        upgraded.save_code_location(CodeLocationRecord("p", "/p", T0, {}, []))
        assert upgraded.get_code_location("p") is not None
    finally:
        upgraded.close()
