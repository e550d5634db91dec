"""HTTP extract against a real local API that pages each way and sometimes answers 429."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from legato.connectors import http
from tests.connectors.api_server import Api, api_client, serve

STYLES: dict[str, dict[str, Any]] = {
    "page number": {"url": "/pages", "paginate": http.PageNumber(size=10), "records": "data"},
    "offset": {"url": "/offset", "paginate": http.Offset(limit=10), "records": "items"},
    "cursor": {
        "url": "/cursor",
        "paginate": http.Cursor(next="meta.next_cursor"),
        "records": "data",
    },
    "next url": {
        "url": "/next",
        "paginate": http.Cursor(next=lambda body: body["next"], param=None),
        "records": "results",
    },
    "link header": {"url": "/link", "paginate": http.LinkHeader(), "records": None},
}


@pytest.fixture
def api() -> Iterator[Api]:
    with serve(Api(rows=95, page_size=10, throttle_every=4)) as served:
        yield served


@pytest.mark.parametrize("style", list(STYLES))
def test_every_pagination_style_extracts_every_row_once_through_429s(
    api: Api, tmp_path: Path, style: str
) -> None:
    target = tmp_path / "out" / "orders.parquet"
    with api_client(api.base_url) as client:
        summary = http.extract(client, to=str(target), **STYLES[style])
    assert (summary.rows, summary.pages) == (95, 10)
    table = pq.read_table(target)
    assert table.column("id").to_pylist() == list(range(95))
    assert table.schema.names == ["id", "name", "amount"]
    assert api.throttled > 0  # the API did say 429 on the way, and nothing was lost


def written_so_far(api: Api, folder: Path) -> list[int]:
    """The bytes the sink has written into ``folder``'s hidden file, as the server saw them
    each time a page was asked for."""
    sizes: list[int] = []
    api.on_request = lambda path: sizes.append(
        sum(p.stat().st_size for p in folder.glob(".*")) if folder.exists() else 0
    )
    return sizes


def test_pages_reach_the_file_before_the_next_page_is_asked_for(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    sizes = written_so_far(api, folder)
    with api_client(api.base_url) as client:
        http.extract(
            client, "/pages", str(folder / "orders.jsonl"),
            paginate=http.PageNumber(size=10), records="data",
        )  # fmt: skip
    assert len(sizes) == 11  # ten pages and the empty one that ends it
    assert sizes[0] == 0
    assert all(a < b for a, b in pairwise(sizes[1:])), sizes
    lines = (folder / "orders.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(95))
    assert not list(folder.glob(".*"))  # the hidden file being written was moved in place


def test_parquet_pages_are_written_one_row_group_each_as_they_come(
    api: Api, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    sizes = written_so_far(api, folder)
    with api_client(api.base_url) as client:
        http.extract(
            client, "/cursor", str(folder / "orders.parquet"),
            paginate=http.Cursor(next="meta.next_cursor"), records="data",
        )  # fmt: skip
    assert len(sizes) == 10 and sizes[0] == 0
    assert all(a < b for a, b in pairwise(sizes[1:])), sizes
    assert pq.ParquetFile(folder / "orders.parquet").num_row_groups == 10


def test_iter_pages_asks_for_a_page_only_when_the_loop_wants_it(api: Api) -> None:
    with api_client(api.base_url) as client:
        pages = http.iter_pages(client, "/offset", paginate=http.Offset(limit=10), records="items")
        first = next(pages)
        assert first.number == 1 and [r["id"] for r in first.records] == list(range(10))
        assert len(api.served) == 1
        rest = list(pages)
    assert [p.number for p in rest] == list(range(2, 11))
    assert sum(len(p.records) for p in rest) == 85


def test_offset_moves_by_the_rows_a_capped_page_held(tmp_path: Path) -> None:
    with serve(Api(rows=50, cap=7)) as api, api_client(api.base_url) as client:
        ids = [
            r["id"]
            for page in http.iter_pages(
                client, "/offset", paginate=http.Offset(limit=20), records="items"
            )
            for r in page.records
        ]
    assert ids == list(range(50))


def test_max_pages_stops_early_and_the_summary_says_so(api: Api, tmp_path: Path) -> None:
    with api_client(api.base_url) as client:
        summary = http.extract(
            client, "/link", str(tmp_path / "head.parquet"),
            paginate=http.LinkHeader(), max_pages=3,
        )  # fmt: skip
    assert (summary.rows, summary.pages) == (30, 3)
    assert len(api.served) == 3


def test_without_pagination_one_page_is_read(api: Api) -> None:
    with api_client(api.base_url) as client:
        pages = list(http.iter_pages(client, "/pages", params={"page": 2}, records="data"))
    assert [r["id"] for r in pages[0].records] == list(range(10, 20)) and len(pages) == 1


def test_placeholders_are_filled_and_any_fsspec_url_is_a_sink(api: Api) -> None:
    url = "memory://lake/{source}/orders.jsonl.gz"
    with api_client(api.base_url) as client:
        summary = http.extract(
            client, "/cursor", url, fields={"source": "shop"},
            paginate=http.Cursor(next="meta.next_cursor"), records="data",
        )  # fmt: skip
    assert summary.path == "memory://lake/shop/orders.jsonl.gz"
    with fsspec.open(summary.path, "rt", compression="gzip") as fh:
        assert len(fh.read().splitlines()) == 95
    fsspec.filesystem("memory").rm("/lake", recursive=True)


class Mixed(Api):
    fraction = 0.0

    def record(self, i: int) -> dict[str, Any]:
        # Whole amounts on the first page, floats after; a note only now and then.
        row: dict[str, Any] = {"id": i, "amount": i if i < 10 else i + self.fraction}
        if i % 7 == 3:
            row["note"] = "late"
        return row


def test_later_pages_are_cast_to_the_first_pages_schema(tmp_path: Path) -> None:
    out = tmp_path / "cast.parquet"
    with serve(Mixed(rows=30)) as api, api_client(api.base_url) as client:
        http.extract(client, "/pages", str(out), paginate=http.PageNumber(), records="data")
    table = pq.read_table(out)
    assert table.schema.field("amount").type == pa.int64()  # the first page's type
    assert table.column("amount").to_pylist() == list(range(30))
    assert table.column("note").to_pylist()[9:11] == [None, "late"]


def test_a_value_the_first_pages_schema_cannot_hold_needs_a_given_schema(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cast.parquet"
    with serve(Mixed(rows=30)) as api, api_client(api.base_url) as client:
        api.fraction = 0.5
        with pytest.raises(ValueError, match=r"page 2: field 'amount' is double.*schema="):
            http.extract(client, "/pages", str(out), paginate=http.PageNumber(), records="data")
        assert list(tmp_path.iterdir()) == []  # nothing half-done
        schema = pa.schema([("id", pa.int64()), ("amount", pa.float64())])
        http.extract(
            client, "/pages", str(out), paginate=http.PageNumber(), records="data",
            schema=schema,
        )  # fmt: skip
    table = pq.read_table(out)
    assert table.schema == schema  # the note, not in the schema given, is left out
    assert table.column("amount").to_pylist()[10] == 10.5


def test_a_field_the_first_page_lacked_is_an_error_not_a_lost_column(tmp_path: Path) -> None:
    class Sparse(Api):
        def record(self, i: int) -> dict[str, Any]:
            return {"id": i, **({"late": True} if i >= 10 else {})}

    with (
        serve(Sparse(rows=30)) as api,
        api_client(api.base_url) as client,
        pytest.raises(ValueError, match=r"page 2 has field 'late'.*schema="),
    ):
        http.extract(
            client, "/pages", str(tmp_path / "sparse.parquet"),
            paginate=http.PageNumber(), records="data",
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_an_error_answer_raises_and_leaves_no_file(tmp_path: Path) -> None:
    with serve(Api(rows=30)) as api, api_client(api.base_url) as client:
        with pytest.raises(httpx.HTTPStatusError, match="404"):
            http.extract(client, "/nowhere", str(tmp_path / "x.parquet"))
        with pytest.raises(ValueError, match=r"records='meta' is a dict"):
            list(http.iter_pages(client, "/cursor", records="meta"))
    assert list(tmp_path.iterdir()) == []


def test_a_next_page_on_another_host_is_not_followed(tmp_path: Path) -> None:
    class Elsewhere(Api):
        def page(self, path: str, q: dict[str, str]) -> tuple[Any, dict[str, str]]:
            body, _ = super().page(path, q)
            return body, {"Link": '<http://127.0.0.2:9/link?page=2>; rel="next"'}

    with serve(Elsewhere(rows=30)) as api, api_client(api.base_url) as client:
        pages = http.iter_pages(client, "/link", paginate=http.LinkHeader())
        assert next(pages).number == 1
        with pytest.raises(ValueError, match=r"next page is on another host"):
            next(pages)


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_an_api_with_nothing_in_it_gives_an_empty_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"none.{suffix}"
    with serve(Api(rows=0)) as api, api_client(api.base_url) as client:
        summary = http.extract(client, "/cursor", str(out), paginate=http.Cursor(next="x"),
                               records="data")  # fmt: skip
    assert (summary.rows, summary.pages) == (0, 0)
    assert (pq.read_table(out).num_rows if suffix == "parquet" else out.read_text()) in (0, "")


def test_a_column_null_on_the_first_pages_takes_its_type_from_a_later_one(
    tmp_path: Path,
) -> None:
    class LateDiscounts(Api):
        def record(self, i: int) -> dict[str, Any]:
            return {
                "id": i,
                "discount": None if i < 25 else i / 100,
                "tags": [] if i < 25 else ["x"],
            }

    out = tmp_path / "late.parquet"
    with serve(LateDiscounts(rows=40)) as api, api_client(api.base_url) as client:
        http.extract(client, "/pages", str(out), paginate=http.PageNumber(), records="data")
    table = pq.read_table(out)
    assert table.schema.field("discount").type == pa.float64()
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.column("discount").to_pylist()[24:26] == [None, 0.25]
    assert pq.ParquetFile(out).num_row_groups == 4
