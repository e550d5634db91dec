"""docs/connectors-sql.md: its Python examples run as written — the incremental pipeline through
real runs (a re-run of a partition reading the same window), ``ctx.cursors`` on its own, the
full extracts and the loads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

DOC = Path(__file__).parents[2] / "docs" / "connectors-sql.md"
T0 = datetime(2026, 11, 20, 8, 0)


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def make_shop(root: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{root / 'shop.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total FLOAT, updated_at DATETIME)"
        )
    engine.dispose()
    add_orders(root, range(1, 4))


def add_orders(root: Path, ids: range) -> None:
    engine = sa.create_engine(f"sqlite:///{root / 'shop.db'}")
    orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [{"id": i, "total": 60.0 * i, "updated_at": T0 + timedelta(hours=i)} for i in ids],
        )
    engine.dispose()


def warehouse_ids(root: Path) -> list[int]:
    import duckdb

    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id").fetchall()]


def test_the_incremental_pipeline_syncs_new_orders_and_reruns_its_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "shop", blocks()[0], module="sync")
    monkeypatch.chdir(root)  # the example's URLs are relative to where it runs
    make_shop(root)
    with Workspace(root) as ws:
        runs = door(ws).runs
        first = runs.run_pipeline("sync_orders", partition="2026-11-20")
        assert first.state == RunState.SUCCEEDED
        assert warehouse_ids(root) == [1, 2, 3]
        add_orders(root, range(4, 6))
        assert runs.run_pipeline("sync_orders", partition="2026-11-21").state == "succeeded"
        assert warehouse_ids(root) == [1, 2, 3, 4, 5]
        add_orders(root, range(6, 7))
        again = runs.run_pipeline("sync_orders", partition="2026-11-20")
        assert again.state == RunState.SUCCEEDED
        windows = ws.store.cursors.list_windows("sync_orders", "orders.updated_at")
        assert [w.scope for w in windows] == ["partition:2026-11-20", "partition:2026-11-21"]
        # The re-run read orders 1 to 3 again (upserted: no change), not order 6.
        assert warehouse_ids(root) == [1, 2, 3, 4, 5]


def test_ctx_cursors_on_its_own(tmp_path: Path) -> None:
    pipe = "\n\nfrom legato import pipeline\n\n@pipeline\ndef events():\n    new_events()\n"
    code = blocks()[1] + pipe
    with Workspace(make_project(tmp_path / "p", code)) as ws:
        runs = door(ws).runs
        first = runs.run_pipeline("events")
        second = runs.run_pipeline("events")
        assert first.state == second.state == RunState.SUCCEEDED
        (w1, w2) = ws.store.cursors.list_windows("events", "events.seq")
        assert (w1.window.low, w1.window.high) == (None, 120)
        assert (w2.window.low, w2.window.high, w2.window.empty) == (120, 120, True)


def test_the_full_extract_and_load_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    make_shop(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(blocks()[2], str(DOC), "exec"), scope)
    assert scope["big_orders"].to_dicts() == [  # type: ignore[attr-defined]
        {"id": 2, "total": 120.0},
        {"id": 3, "total": 180.0},
    ]
    assert scope["by_day"]["total"].tolist() == [360.0]  # type: ignore[index]
    assert capsys.readouterr().out == "3\n"
    exec(compile(blocks()[3], str(DOC), "exec"), {})
    shop = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with shop.connect() as conn:
        rows = conn.exec_driver_sql("SELECT sku, price FROM prices ORDER BY sku").all()
    shop.dispose()
    assert [tuple(r) for r in rows] == [("a-1", 9.0), ("b-2", 12.5)]
