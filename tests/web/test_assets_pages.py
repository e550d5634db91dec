"""The Assets pages: a viewer reads the catalog a page at a time and searches it, and opens
an asset to see its producers, consumers and neighbours linked, its latest columns and
preview, a chart of its row counts and its materializations page by page; text a task or a
declaration wrote (descriptions, owners, tags, preview values) is shown as text, never
markup."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.domain.materializations import NewMaterialization
from legato.services.workspace import Workspace
from legato.web.asset_pages import CATALOG_PAGE, HISTORY_PAGE
from tests.conftest import BACKENDS
from tests.helpers import make_project, signed_client

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
T0 = datetime(2026, 3, 1, tzinfo=UTC)

CODE = f'''
from legato import Asset, pipeline, task
from legato.partitions import static


@task(consumes="crm.customers", produces=Asset(
    "shop.orders", description="Orders {SCRIPT}", owner="sales {SCRIPT}", tags=("{SCRIPT}",)
))
def orders():
    return [1]


@pipeline(partitions=static(["eu", "us"]))
def ingest():
    orders()


@task(consumes="shop.orders", produces="reports.orders")
def report():
    return 1


@pipeline
def reporting():
    report()


def _many(i):
    def make():
        return i
    make.__name__ = make.__qualname__ = f"make{{i}}"
    return task(produces=f"bulk.a{{i:04d}}")(make)


_MAKERS = [_many(i) for i in range({CATALOG_PAGE + 5})]


@pipeline
def bulk():
    for m in _MAKERS:
        m()
'''


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Workspace]:
    extra = ""
    if request.param == "postgresql":
        extra = f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
    root = make_project(tmp_path / "proj", CODE, extra=extra)
    with Workspace(root) as w:
        yield w


def record_orders(ws: Workspace, count: int) -> None:
    """``count`` materializations of shop.orders, alternating partitions, the rows growing,
    each with columns and a preview whose values hold markup."""
    ws.store.assets.record([
        NewMaterialization(
            "shop.orders", ("eu", "us")[i % 2], "ingest", f"run-{i:04d}", "orders",
            T0 + timedelta(minutes=i),
            {"rows": 100 + i, "columns": [{"name": "id", "type": "int64"},
                                          {"name": "note", "type": "string"}],
             "preview": [{"id": 1, "note": SCRIPT}, {"id": 2, "note": "plain"}],
             "values": {"source": SCRIPT}},
        )
        for i in range(count)
    ])  # fmt: skip


def keys_on(html: str) -> list[str]:
    return re.findall(r'<tr data-asset="([^"]*)">', html)


def test_a_viewer_pages_through_and_searches_the_catalog(ws: Workspace) -> None:
    record_orders(ws, 3)
    client = signed_client(ws, "viewer")
    first = client.get("/assets")
    assert first.status_code == 200, first.text
    assert '<a href="/assets" class="on">Assets</a>' in first.text
    shown = keys_on(first.text)
    assert len(shown) == CATALOG_PAGE and shown[0] == "bulk.a0000"
    assert 'href="/assets?offset=100">Next</a>' in first.text
    assert "Previous" not in first.text

    second = client.get("/assets?offset=100")
    rest = keys_on(second.text)
    assert rest == ["bulk.a0100", "bulk.a0101", "bulk.a0102", "bulk.a0103", "bulk.a0104",
                    "crm.customers", "reports.orders", "shop.orders"]  # fmt: skip
    assert "Next" not in second.text and 'href="/assets?offset=0">Previous</a>' in second.text

    found = client.get("/assets", params={"search": "ORDERS"})
    assert keys_on(found.text) == ["reports.orders", "shop.orders"]
    row = re.search(r'<tr data-asset="shop.orders">(.*?)</tr>', found.text, re.S)
    assert row, found.text
    orders = row.group(1)
    assert '<a class="name" href="/assets/shop.orders">shop.orders</a>' in orders
    assert '<a href="/pipelines/ingest">ingest.orders</a>' in orders
    assert "<td>static</td>" in orders and "<td>102</td>" in orders

    # What a declaration or a search says is text: escaped, never markup.
    assert SCRIPT not in found.text and f"Orders {ESCAPED}" in found.text
    echoed = client.get("/assets", params={"search": SCRIPT})
    assert echoed.status_code == 200 and keys_on(echoed.text) == []
    assert SCRIPT not in echoed.text and ESCAPED in echoed.text


def test_a_viewer_opens_an_asset(ws: Workspace) -> None:
    record_orders(ws, HISTORY_PAGE + 7)
    client = signed_client(ws, "viewer")
    page = client.get("/assets/shop.orders")
    assert page.status_code == 200, page.text
    text = page.text
    assert '<a href="/pipelines/ingest">ingest.orders</a>' in text
    assert '<a href="/pipelines/reporting">reporting.report</a>' in text
    assert '<a href="/assets/crm.customers">crm.customers</a>' in text
    assert '<a href="/assets/reports.orders">reports.orders</a>' in text
    assert "57 materializations in 2 partitions" in text
    # The latest metadata: its columns and its preview, the markup in them as text.
    assert "<td><code>note</code></td><td><code>string</code></td>" in text
    assert f"<td>{ESCAPED}</td>" in text and "<td>plain</td>" in text
    assert SCRIPT not in text and f"sales {ESCAPED}" in text
    # The row counts as a chart drawn on the server: one point per materialization.
    chart = re.search(r'<svg[^>]*class="rows-chart".*?</svg>', text, re.S)
    assert chart, text
    assert chart.group(0).count('<circle class="point"') == HISTORY_PAGE + 7
    assert "156 rows</title>" in chart.group(0)
    # Materializations, newest first, a page at a time, each linked to its run.
    ids = [int(i) for i in re.findall(r'<tr data-materialization="(\d+)">', text)]
    assert len(ids) == HISTORY_PAGE and ids == sorted(ids, reverse=True)
    assert '<a href="/runs/run-0056">run-0056</a>' in text
    older = re.search(r'<a href="(\?before=\d+)#materializations">Older</a>', text)
    assert older, text
    rest = client.get("/assets/shop.orders" + older.group(1)).text
    more = [int(i) for i in re.findall(r'<tr data-materialization="(\d+)">', rest)]
    assert len(more) == 7 and max(more) < min(ids) and "Older</a>" not in rest

    assert '<a href="?partition=eu">eu</a>' in text and '<a href="?partition=us">us</a>' in text
    only_us = client.get("/assets/shop.orders", params={"partition": "us"}).text
    parts = re.findall(r'<tr data-materialization="\d+">.*?</tr>', only_us, re.S)
    assert parts and all("<td>us</td>" in p for p in parts)


def test_an_asset_never_made_and_one_no_task_declares(ws: Workspace) -> None:
    client = signed_client(ws, "viewer")
    page = client.get("/assets/reports.orders")
    assert page.status_code == 200, page.text
    assert "Never materialized." in page.text and "rows-chart" not in page.text
    missing = client.get("/assets/no.such")
    assert missing.status_code == 404 and "no asset" in missing.text
