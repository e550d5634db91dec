"""``ctx.cursors`` outside a run: a task called as its plain function with a Context it was
handed has no store to keep windows in, and says so instead of reading everything."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from legato import Context
from legato.connectors import sql


def test_an_incremental_extract_outside_a_run_says_why_it_cannot_run() -> None:
    ctx = Context(
        run_id="r1",
        pipeline="p",
        task="t",
        attempt=1,
        partition=None,
        params={},
        log=logging.getLogger("t"),
    )
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(RuntimeError, match="no window kept for it"):
        sql.extract(engine, "orders", cursor="id", ctx=ctx)
    engine.dispose()
