"""Check results: written with the driver's step or not at all, kept with their history
and read back per asset and per run, newest first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from legato.domain.records import Changes, LeaseLost, NewCheckResult, NewEvent
from legato.store.store import Store
from tests.store.store_testkit import T0, Records, leased_run

MIN = timedelta(minutes=1)


def _result(run_id: str, name: str, outcome: str, failed: int | None, at_s: int,
            asset: str = "shop.orders", pipeline: str = "sales") -> NewCheckResult:
    return NewCheckResult(
        check_name=name, asset=asset, run_id=run_id, pipeline=pipeline, task_key="orders",
        partition="2026-12-01", severity="block", outcome=outcome, failed_count=failed,
        total_count=4, sample=({"order_id": 2, "note": "é"},) if failed else (),
        message=f"{failed} of 4 rows", at=T0 + timedelta(seconds=at_s),
    )


def _step(store: Store, run_id: str, owner: str, *results: NewCheckResult) -> None:
    at = T0 + timedelta(seconds=1)
    store.runs.apply(Changes(
        run_id, owner, at + MIN,
        events=[NewEvent(run_id, None, "lease", None, None, at)], checks=list(results),
    ))


def test_results_are_written_with_the_step_or_not_at_all(store: Store, rec: Records) -> None:
    run_id = leased_run(store, rec)
    with pytest.raises(LeaseLost):
        _step(store, run_id, "thief", _result(run_id, "unique(order_id)", "failed", 2, 1))
    assert store.checks.list(run_id=run_id) == []
    failed = _result(run_id, "unique(order_id)", "failed", 2, 1)
    _step(store, run_id, "driver", failed)
    [got] = store.checks.list(run_id=run_id)
    assert got.result == failed


def test_history_per_asset_and_run_newest_first(store: Store, rec: Records) -> None:
    first, second = leased_run(store, rec), leased_run(store, rec)
    other = leased_run(store, rec, "hr")
    _step(store, first, "driver", _result(first, "unique(order_id)", "failed", 2, 1),
          _result(first, "row_count", "passed", None, 1))
    _step(store, second, "driver", _result(second, "unique(order_id)", "passed", 0, 2))
    _step(store, other, "driver",
          _result(other, "not_null(id)", "passed", 0, 3, asset="hr.people", pipeline="hr"))
    history = store.checks.list(asset="shop.orders")
    assert [(r.result.run_id, r.result.check_name, r.result.outcome) for r in history] == [
        (second, "unique(order_id)", "passed"),
        (first, "row_count", "passed"),
        (first, "unique(order_id)", "failed"),
    ]
    assert [r.result.check_name for r in store.checks.list(run_id=other)] == ["not_null(id)"]
    assert [r.result.pipeline for r in store.checks.list(pipelines=["hr"])] == ["hr"]
    assert len(store.checks.list(limit=2)) == 2
