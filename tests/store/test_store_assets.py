"""Materializations in the store: written with the driver's step or not at all, and read back
newest first per asset, per partition, page by page and per run; on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from legato.domain.materializations import NewMaterialization
from legato.domain.records import Changes, LeaseLost
from legato.store.store import Store
from tests.store.store_testkit import T0, Records

MIN = timedelta(minutes=1)


def _made(asset: str, partition: str | None, n: int, run_id: str = "r1") -> NewMaterialization:
    return NewMaterialization(asset, partition, "sales", run_id, "load", T0 + n * MIN,
                              {"rows": n, "preview": [{"n": n, "text": "é"}]})  # fmt: skip


def test_materializations_are_written_with_the_step_or_not_at_all(
    store: Store, rec: Records
) -> None:
    run = rec.run("sales", partition="2026-12-05")
    store.runs.create_run(run, [rec.task(run, "load")])
    assert store.runs.acquire_lease(run.id, "driver", T0 + MIN, T0)
    made = [_made("warehouse.sales", "2026-12-05", 1, run.id)]
    with pytest.raises(LeaseLost):
        store.runs.apply(Changes(run.id, "thief", T0 + MIN, materializations=made))
    assert store.assets.of_run(run.id) == []
    store.runs.apply(Changes(run.id, "driver", T0 + MIN, materializations=made))
    (got,) = store.assets.of_run(run.id)
    assert (got.asset, got.partition, got.pipeline, got.task_key, got.at) == (
        "warehouse.sales", "2026-12-05", "sales", "load", T0 + MIN)
    assert got.metadata == {"rows": 1, "preview": [{"n": 1, "text": "é"}]} and got.rows == 1
    with pytest.raises(ValueError, match="materialization"):  # another run's: refused
        store.runs.apply(Changes(run.id, "driver", T0 + MIN,
                                 materializations=[_made("x", None, 1, "other")]))  # fmt: skip


def test_latest_per_asset_and_per_partition_history_and_counts(store: Store) -> None:
    store.assets.record(
        [_made("a", "2026-01-01", 1), _made("a", "2026-01-02", 2), _made("b", None, 3),
         _made("a", "2026-01-01", 4), _made("a", None, 5)]
    )  # fmt: skip
    latest = store.assets.latest(["a", "b", "never"])
    assert {k: m.rows for k, m in latest.items()} == {"a": 5, "b": 3}
    # Each partition's newest, greatest first, the asset's own (None) last; then paged.
    parts = store.assets.partitions("a")
    assert [(m.partition, m.rows) for m in parts] == [("2026-01-02", 2), ("2026-01-01", 4),
                                                     (None, 5)]  # fmt: skip
    assert [m.partition for m in store.assets.partitions("a", limit=1)] == ["2026-01-02"]
    after = store.assets.partitions("a", before="2026-01-02")
    assert [m.partition for m in after] == ["2026-01-01"]
    history = store.assets.history("a", limit=2)
    assert [m.rows for m in history] == [5, 4]
    older = store.assets.history("a", before_id=history[-1].id)
    assert [m.rows for m in older] == [2, 1]
    assert [m.rows for m in store.assets.history("a", partition="2026-01-01")] == [4, 1]
    counts = store.assets.counts("a")
    assert (counts.materializations, counts.partitions) == (4, 2)  # None is no partition
    assert store.assets.counts("never").materializations == 0


def test_latest_of_more_assets_than_one_query_holds(store: Store) -> None:
    keys = [f"asset_{i:04d}" for i in range(1000)]
    store.assets.record([_made(k, None, i) for i, k in enumerate(keys)])
    store.assets.record([_made(k, None, 5000 + i) for i, k in enumerate(keys) if i % 3 == 0])
    latest = store.assets.latest(keys)
    assert len(latest) == 1000
    assert latest["asset_0999"].rows == 5999 and latest["asset_0998"].rows == 998


def test_latest_in_brief_carries_the_row_count_alone(store: Store) -> None:
    odd = NewMaterialization("c", None, "sales", "r1", "load", T0, {"rows": "many"})
    none = NewMaterialization("d", None, "sales", "r1", "load", T0, {"type": "dict"})
    store.assets.record([_made("a", None, 7), _made("b", "2026-01-01", 123_456_789), odd, none])
    brief = store.assets.latest(["a", "b", "c", "d"], brief=True)
    assert {k: m.metadata for k, m in brief.items()} == {
        "a": {"rows": 7}, "b": {"rows": 123_456_789}, "c": {}, "d": {}}
    assert brief["b"].partition == "2026-01-01" and brief["b"].rows == 123_456_789
