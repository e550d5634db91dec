"""Asset freshness under each asset's own policy, at the workspace's (injected) clock: the
catalog, one asset and the lineage graph say fresh, stale (and why), never or none; the
catalog filters the stale ones; the ``asset_stale`` alert reaches a real webhook receiver
once per asset and partition and is resolved by a materialization. Through real runs, once
per store backend."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legato.clock import ManualClock
from legato.domain.materializations import NewMaterialization
from legato.domain.states import RunState
from legato.services.asset_alerts import INTERVAL
from legato.services.door import Door
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project
from tests.observability.test_webhook_channel import Receiver

#: ``ingest`` makes shop.orders per day (fresh within 2 h of a day's end); ``transform``
#: makes warehouse.sales, unpartitioned, fresh within 1 h; ``archive`` is never run;
#: ``reports.sales`` has no policy.
CODE = """
from datetime import timedelta

from legato import Asset, pipeline, task
from legato.partitions import daily


@task(produces=Asset("shop.orders", freshness=timedelta(hours=2)), in_process=True)
def orders(ctx) -> list[dict]:
    return [{"order_id": 1, "day": ctx.partition}]


@pipeline(partitions=daily(start="2026-12-01", tz="UTC"), tags=["shop"])
def ingest():
    orders()


@task(consumes="shop.orders", produces=Asset("warehouse.sales", freshness=timedelta(hours=1)),
      in_process=True)
def sales() -> list[dict]:
    return [{"total": 1}]


@task(consumes="warehouse.sales", produces="reports.sales", in_process=True)
def report(rows) -> list[dict]:
    return rows


@pipeline
def transform():
    report(sales())


@task(produces=Asset("reports.archive", freshness=timedelta(days=1)), in_process=True)
def archive() -> list[dict]:
    return []


@pipeline
def archiving():
    archive()
"""

START = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)  # the 5th closed 1 h ago: not yet late


def _project(tmp_path: Path, extra: str) -> Path:
    return make_project(tmp_path / "proj", CODE, extra=extra)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    store_url_for: Callable[[str], str],
    clock: ManualClock,
) -> Iterator[Workspace]:
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    ws = Workspace(_project(tmp_path, extra), clock=clock)
    yield ws
    ws.close()


def _run(d: Door, pipeline: str, partition: str | None = None) -> None:
    run = d.runs.run_pipeline(pipeline, partition=partition)
    assert run.state == RunState.SUCCEEDED, run.error


def _states(d: Door) -> dict[str, str]:
    return {e.key: e.freshness.state for e in d.assets.catalog()}


def test_each_asset_is_judged_under_its_own_policy(ws: Workspace, clock: ManualClock) -> None:
    d = door(ws)
    for day in range(1, 5):
        _run(d, "ingest", f"2026-12-0{day}")
    _run(d, "transform")
    # 01:00 on the 6th: the 5th's window closed 1 h ago (2 h allowed); the 4th is there.
    assert _states(d) == {
        "reports.archive": "never",
        "reports.sales": "none",
        "shop.orders": "fresh",
        "warehouse.sales": "fresh",
    }
    assert d.assets.catalog(stale=True) == []

    clock.advance(2 * 3600)  # 03:00: the 5th is 3 h past its window; sales made 2 h ago
    stale = {e.key: e.freshness for e in d.assets.catalog(stale=True)}
    assert sorted(stale) == ["shop.orders", "warehouse.sales"]
    assert stale["shop.orders"].missing == ("2026-12-05",)
    assert stale["shop.orders"].why == (
        "partition 2026-12-05 not materialized 3 h 0 min after its window closed "
        "(allowed 2 h 0 min)"
    )
    assert stale["warehouse.sales"].why == "last materialized 2 h 0 min ago (allowed 1 h 0 min)"
    assert d.assets.catalog(stale=True, limit=1, offset=1)[0].key == "warehouse.sales"

    view = d.assets.asset("shop.orders")
    assert view.entry.freshness.state == "stale"
    graph = d.assets.lineage()
    assert {n.key: n.freshness.state for n in graph.nodes}["warehouse.sales"] == "stale"

    _run(d, "ingest", "2026-12-05")  # the missing day made: fresh again
    _run(d, "transform")
    assert _states(d)["shop.orders"] == "fresh"
    assert _states(d)["warehouse.sales"] == "fresh"


def test_the_lineage_graph_around_one_asset(ws: Workspace) -> None:
    d = door(ws)
    around = d.assets.lineage(focus="reports.sales", depth=1)
    assert [n.key for n in around.nodes] == ["reports.sales", "warehouse.sales"]
    assert around.edges == (("warehouse.sales", "reports.sales"),)
    assert around.total == 4
    wider = d.assets.lineage(focus="reports.sales", depth=2)
    assert [n.key for n in wider.nodes] == ["reports.sales", "shop.orders", "warehouse.sales"]
    capped = d.assets.lineage(limit=2)
    assert len(capped.nodes) == 2 and capped.total == 4


# -- the asset_stale alert -------------------------------------------------------------------


def _bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver.got]


def _cycle(d: Door, clock: ManualClock) -> None:
    d.alerts.evaluate(clock())
    d.alerts.deliver(clock(), "test-owner")


def test_a_stale_asset_alerts_once_per_partition_and_a_materialization_resolves_it(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n'
        '[alerts.stale_shop]\ncondition = "asset_stale"\nchannels = ["ops"]\ntags = ["shop"]\n'
        '[alerts.stale_all]\ncondition = "asset_stale"\nchannels = ["ops"]\n'
        'pipelines = ["trans*"]\n'
    )
    with Workspace(_project(tmp_path, rules), clock=clock) as ws:
        d = door(ws)
        for day in range(1, 5):
            _run(d, "ingest", f"2026-12-0{day}")
        _run(d, "transform")
        _cycle(d, clock)
        assert receiver.got == []  # everything fresh; reports.archive never made: no alert

        clock.advance(2 * 3600)
        _cycle(d, clock)
        sent = {b["rule"]: b for b in _bodies(receiver)}
        assert sorted(sent) == ["stale_all", "stale_shop"]  # each rule its producer's assets
        shop = sent["stale_shop"]
        assert (shop["kind"], shop["pipeline"], shop["partition"]) == (
            "trigger",
            "ingest",
            "2026-12-05",
        )
        assert shop["title"].startswith("Stale asset: shop.orders 2026-12-05:")
        assert sent["stale_all"]["title"].startswith("Stale asset: warehouse.sales:")
        clock.advance(600)
        _cycle(d, clock)
        assert len(receiver.got) == 2  # once per asset and partition while open

        _run(d, "ingest", "2026-12-05")
        _cycle(d, clock)
        resolved = _bodies(receiver)[2:]
        assert [(b["kind"], b["rule"]) for b in resolved] == [("resolve", "stale_shop")]
        assert "partition 2026-12-05 was materialized" in resolved[0]["title"]

        _run(d, "transform")
        _cycle(d, clock)
        last = _bodies(receiver)[-1]
        assert (last["kind"], last["rule"]) == ("resolve", "stale_all")
        assert "a materialization made it fresh" in last["title"]

        # Made outside any run (no run finished, so no fact): judged again within INTERVAL.
        clock.advance(2 * 3600)
        _cycle(d, clock)
        assert _bodies(receiver)[-1]["title"].startswith("Stale asset: warehouse.sales:")
        ws.store.assets.record(
            [NewMaterialization("warehouse.sales", None, "transform", "r-outside", "sales",
                                clock(), {})]
        )  # fmt: skip
        _cycle(d, clock)
        assert _bodies(receiver)[-1]["kind"] == "trigger"
        clock.advance(INTERVAL.total_seconds())
        _cycle(d, clock)
        assert (_bodies(receiver)[-1]["kind"], _bodies(receiver)[-1]["rule"]) == (
            "resolve", "stale_all"
        )


def test_an_asset_stale_rule_watches_only_the_assets_it_names(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n'
        '[alerts.warehouse]\ncondition = "asset_stale"\nchannels = ["ops"]\n'
        'assets = ["warehouse.*"]\n'
    )
    with Workspace(_project(tmp_path, rules), clock=clock) as ws:
        d = door(ws)
        for day in range(1, 5):
            _run(d, "ingest", f"2026-12-0{day}")
        _run(d, "transform")
        clock.advance(2 * 3600)  # shop.orders 2026-12-05 late, warehouse.sales old: both stale
        _cycle(d, clock)
        titles = [b["title"] for b in _bodies(receiver)]
        assert len(titles) == 1 and titles[0].startswith("Stale asset: warehouse.sales:")
