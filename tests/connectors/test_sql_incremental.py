"""Incremental SQL extract through real runs: each run reads only the rows that came since the
last one, and a retried attempt or a re-run of a partition reads the same window again (the
run's store on SQLite and on PostgreSQL, the source database of either kind)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from legato.domain.refs import ResultRef
from legato.domain.states import RunState
from legato.results.result_store import ResultStore
from legato.services.door import Door
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door as door_of
from tests.helpers import make_project

CODE = """
from pathlib import Path

import sqlalchemy as sa

from legato import Context, pipeline, task
from legato.connectors import sql
from legato.partitions import daily


@task
def pull(ctx: Context, source: str) -> list[int]:
    frame = sql.extract(
        source,
        "orders",
        cursor="updated_at",
        ctx=ctx,
        where="id < :cap",  # bound in the window's max as in the read
        params={"cap": 1000},
        as_="arrow",
    )
    return sorted(frame.column("id").to_pylist())


@pipeline
def orders(source: str):
    pull(source)


@pipeline(partitions=daily(start="2026-11-01", tz="UTC"))
def daily_orders(source: str):
    pull(source)


@task(retries=1)
def pull_then_fail(ctx: Context, source: str) -> list[int]:
    frame = sql.extract(source, "orders", cursor="updated_at", ctx=ctx, as_="pandas")
    if ctx.attempt == 1:
        # Rows arrive while the first attempt fails: the retry must not read them.
        with sa.create_engine(source).begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO orders VALUES (99, '2027-01-01 00:00:00.000000')"
                    " ON CONFLICT DO NOTHING"
                )
            )
        raise ConnectionError("the warehouse went away")
    return sorted(frame["id"].tolist())


@pipeline
def flaky_orders(source: str):
    pull_then_fail(source)
"""

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest, tmp_path: Path, store_url_for) -> Iterator[Workspace]:
    url = store_url_for(request.param)
    root = make_project(tmp_path / "p", CODE, extra=f'\n[store]\nurl = "{url}"\n')
    with Workspace(root) as made:
        yield made


@pytest.fixture
def door(ws: Workspace) -> Door:
    return door_of(ws)


@pytest.fixture(params=["sqlite-source", "postgresql-source"])
def source(request: pytest.FixtureRequest, tmp_path: Path, store_url_for) -> str:
    """The shop's database the pipelines read, with an empty ``orders`` table."""
    if request.param == "sqlite-source":
        url, stamp = f"sqlite:///{tmp_path / 'shop.db'}", "DATETIME"
    else:
        url, stamp = store_url_for("postgresql"), "TIMESTAMP WITH TIME ZONE"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE orders (id INTEGER PRIMARY KEY, updated_at {stamp})")
    engine.dispose()
    return url


def add_orders(url: str, ids: range) -> None:
    """Orders ``ids``, each updated a minute after the one before."""
    engine = sa.create_engine(url)
    table = sa.Table("orders", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        rows = [{"id": i, "updated_at": T0 + timedelta(minutes=i)} for i in ids]
        conn.execute(table.insert(), rows)
    engine.dispose()


def read(ws: Workspace, door: Door, run_id: str) -> object:
    (row,) = door.runs.task_runs(run_id)
    assert row.result_format is not None and row.result_uri is not None
    return ResultStore(ws.config.results_url).get(ResultRef(row.result_uri, row.result_format))


def test_each_run_reads_only_the_rows_new_since_the_last(
    ws: Workspace, door: Door, source: str
) -> None:
    add_orders(source, range(1, 4))
    first = door.runs.run_pipeline("orders", {"source": source})
    assert first.state == RunState.SUCCEEDED
    assert read(ws, door, first.id) == [1, 2, 3]
    add_orders(source, range(4, 6))
    second = door.runs.run_pipeline("orders", {"source": source})
    assert read(ws, door, second.id) == [4, 5]
    # Nothing new: the third run reads nothing; then it is the fourth's turn.
    third = door.runs.run_pipeline("orders", {"source": source})
    assert read(ws, door, third.id) == []
    add_orders(source, range(6, 7))
    fourth = door.runs.run_pipeline("orders", {"source": source})
    assert read(ws, door, fourth.id) == [6]
    windows = ws.store.cursors.list_windows("orders", "orders.updated_at")
    assert [w.run_id for w in windows] == [first.id, second.id, third.id, fourth.id]
    assert windows[1].window.low == windows[0].window.high
    assert isinstance(windows[1].window.high, datetime)


def test_a_rerun_of_a_partition_reads_the_same_window_after_new_rows(
    ws: Workspace, door: Door, source: str
) -> None:
    add_orders(source, range(1, 4))
    day1 = door.runs.run_pipeline("daily_orders", {"source": source}, partition="2026-11-20")
    assert read(ws, door, day1.id) == [1, 2, 3]
    add_orders(source, range(4, 6))
    day2 = door.runs.run_pipeline("daily_orders", {"source": source}, partition="2026-11-21")
    assert read(ws, door, day2.id) == [4, 5]
    add_orders(source, range(6, 8))
    # Running 2026-11-20 again reads what it read the first time, not the rows since.
    again = door.runs.run_pipeline("daily_orders", {"source": source}, partition="2026-11-20")
    assert again.id != day1.id
    assert read(ws, door, again.id) == [1, 2, 3]
    # And a re-run of the run (from the operator's re-run) reads it too.
    rerun = door.runs.rerun(day2.id, task="pull")
    assert door.runs.execute(rerun.id).state == RunState.SUCCEEDED
    assert read(ws, door, rerun.id) == [4, 5]
    day3 = door.runs.run_pipeline("daily_orders", {"source": source}, partition="2026-11-22")
    assert read(ws, door, day3.id) == [6, 7]


def test_a_retried_attempt_reads_the_window_of_the_first(
    ws: Workspace, door: Door, source: str
) -> None:
    add_orders(source, range(1, 3))
    run = door.runs.run_pipeline("flaky_orders", {"source": source})
    assert run.state == RunState.SUCCEEDED
    first, second = door.runs.attempts(run.id)
    assert second.error is None and first.error == "ConnectionError: the warehouse went away"
    assert read(ws, door, run.id) == [1, 2]
    # The row that came during the failed attempt is the next run's.
    after = door.runs.run_pipeline("flaky_orders", {"source": source})
    assert read(ws, door, after.id) == [99]
