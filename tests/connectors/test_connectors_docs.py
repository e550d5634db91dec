"""docs/connectors.md: its legato.toml names kinds Legato ships, and each Python example
runs against a real local API, files on disk and moto's S3 server."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fsspec
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.dirfs import DirFileSystem

from legato.connectors import files, http
from legato.definitions.context import Context
from legato.resources.kind import BUILTIN_KINDS
from tests.connectors.api_server import Api, api_client, serve

DOC = Path(__file__).parents[2] / "docs" / "connectors.md"
BERLIN = ZoneInfo("Europe/Berlin")


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def examples(title: str) -> list[dict[str, Any]]:
    """Each Python block of the section, run; what it defined."""
    scopes = []
    for block in re.findall(r"```python\n(.*?)```", section(title), flags=re.DOTALL):
        scope: dict[str, Any] = {}
        exec(compile(block, str(DOC), "exec"), scope)
        scopes.append(scope)
    return scopes


@pytest.fixture
def ctx() -> Context:
    return Context(
        run_id="run-1", pipeline="shop", task="t", attempt=1, partition="2026-11-20|eu",
        params={}, log=logging.getLogger("docs"),
        partition_keys={"date": "2026-11-20", "region": "eu"},
        window_start=datetime(2026, 11, 20, tzinfo=BERLIN),
        window_end=datetime(2026, 11, 21, tzinfo=BERLIN),
    )  # fmt: skip


@pytest.fixture
def api() -> Iterator[Api]:
    with serve(Api(rows=95, throttle_every=5, aliases={"/orders": "/cursor"})) as served:
        yield served


def test_the_resources_are_of_kinds_legato_ships() -> None:
    (block,) = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    resources = tomllib.loads(block)["resources"]
    assert {r["kind"] for r in resources.values()} <= set(BUILTIN_KINDS)
    assert sorted(resources) == ["crm", "lake", "shop_api"]


def test_the_http_examples_extract_every_page(api: Api, ctx: Context, tmp_path: Path) -> None:
    extracting, styles, iterating = examples("HTTP")
    lake = DirFileSystem(str(tmp_path / "lake"), fsspec.filesystem("file"))
    with api_client(api.base_url) as shop_api:
        path = extracting["extract_orders"].fn(ctx, shop_api, lake)
        assert path == "raw/orders/2026-11-20|eu.parquet"
        assert pq.read_table(tmp_path / "lake" / path).num_rows == 95
        assert {q["status"] for q in api.queries} == {"paid"}

        served = {"by_page": ("/pages", "data"), "by_offset": ("/offset", "items"),
                  "by_cursor": ("/cursor", "data"), "by_next_url": ("/next", "results"),
                  "by_link_header": ("/link", None)}  # fmt: skip
        assert sorted(k for k in styles if k.startswith("by_")) == sorted(served)
        for name, (url, records) in served.items():
            pages = http.iter_pages(shop_api, url, paginate=styles[name], records=records)
            ids = [r["id"] for page in pages for r in page.records]
            assert ids == list(range(95)), name

        large = iterating["count_large_orders"].fn(shop_api)
    assert large == sum(1 for i in range(95) if i * 1.5 > 100)


def test_the_files_examples_land_a_partition(
    ctx: Context, tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, archiving = examples("Files")
    lake = DirFileSystem(str(tmp_path / "lake"), fsspec.filesystem("file"))
    files.write([{"id": 1, "paid": True}, {"id": 2, "paid": False}],
                "drop/2026-11-20/a.csv", filesystem=lake)  # fmt: skip
    files.write([{"id": 3, "paid": True}], "drop/2026-11-20/b.csv", filesystem=lake)
    path = landing["land_orders"].fn(ctx, lake)
    assert path == "orders/2026-11-20/eu/part.parquet"
    assert files.read(path, filesystem=lake, into="arrow").column("id").to_pylist() == [1, 3]

    # s3fs finds its endpoint and credentials in the environment, as on a real machine.
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    options = {"skip_instance_cache": True}
    fsspec.filesystem("s3", **options).mkdir("shop-archive", region_name="eu-west-1")
    archiving["archive_orders"].fn(ctx, [{"id": 1}])
    url = "s3://shop-archive/orders/2026/11/20.jsonl.gz"
    assert files.read(url, into="arrow", storage_options=options).to_pylist() == [{"id": 1}]


def test_the_activation_example_pushes_batches_with_keys(api: Api, ctx: Context) -> None:
    (pushing,) = examples("Activation over HTTP")
    summary = [{"day": "2026-11-20", "store": n, "sales": n * 10} for n in range(450)]
    with api_client(api.base_url) as crm:
        assert pushing["push_daily_summary"].fn(ctx, crm, summary) == 450
    assert [len(p.rows["records"]) for p in api.pushes] == [200, 200, 50]
    assert api.pushes[2].key == "run-1/t//v1/daily-sales/2"  # as the text says, task t
    assert len(api.stored) == 3
