"""`legato up` with an ``on_asset`` trigger: a producing run submitted to the daemon makes
its asset; the daemon then starts the consuming pipeline's run for the same partition, and
that run reads what the producer wrote. A materialization from before the daemon first saw
the trigger starts nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.test_daemon import MARK, all_runs, submit, wait_runs
from tests.helpers import Daemons, cli, make_project, marks, wait_for

if TYPE_CHECKING:
    from legato.store.store import Store

CODE = (
    MARK
    + """
from legato import Context, pipeline, task
from legato.partitions import daily
from legato.triggers import on_asset

@task(produces="shop.orders")
def orders(ctx: Context) -> None:
    (HERE / f"orders-{ctx.partition}.txt").write_text("3-orders")
    mark(f"orders:{ctx.partition}")

@pipeline(partitions=daily(start="2024-01-01"))
def ingest():
    orders()

@task(consumes="shop.orders")
def sales(ctx: Context) -> None:
    mark(f"sales:{ctx.partition}:" + (HERE / f"orders-{ctx.partition}.txt").read_text())

@pipeline(partitions=daily(start="2024-01-01"), triggers=[on_asset("shop.orders")])
def daily_sales():
    sales()
"""
)


def test_a_materialization_starts_the_consumer_for_its_partition(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", CODE)
    old = cli("run", "ingest", "--partition", "2024-01-01", "--quiet", project=project)
    assert old.returncode == 0, old.stdout + old.stderr
    store = store_of(project)
    daemons.up(project)
    key = ("daily_sales", "asset-shop.orders")

    def watching() -> bool:
        state = store.triggers.trigger_states().get(key)
        return state is not None and state.cursor is not None

    wait_for(watching, timeout=15, what="the trigger's first sight")
    producer = submit(project, "ingest", "--partition", "2024-01-03")
    (run,) = wait_runs(store, 1, pipeline="daily_sales")
    assert (run.partition, run.origin) == ("2024-01-03", "trigger:asset-shop.orders")
    assert run.run_key == f"trigger:daily_sales:asset-shop.orders:{producer}:2024-01-03"
    cursor = store.triggers.trigger_states()[key].cursor
    assert cursor["waiting"] == []
    assert [r.pipeline for r in all_runs(store) if r.pipeline == "daily_sales"] == ["daily_sales"]
    assert marks(project / "marks.txt") == [
        "orders:2024-01-01",
        "orders:2024-01-03",
        "sales:2024-01-03:3-orders",
    ]
