"""HTTP extract: an API's pages, one request at a time, through an ``httpx.Client`` (an
``http`` resource, whose retries on 429 and 5xx and rate limit every request gets).

``iter_pages`` yields each page's records for code that handles pages itself; ``extract``
writes them as they come to a Parquet or JSON lines file on any fsspec URL or filesystem
and returns a small summary. Either holds one page in memory at a time. Paging stops at an
empty page, when there is no next page (no cursor, no ``rel="next"`` link), or after
``max_pages``. ``push`` (activation) sends rows the other way.

    from legato.connectors import http

    summary = http.extract(
        api, "/orders", "s3://lake/orders/{partition}.parquet", ctx=ctx,
        paginate=http.Cursor(next="meta.next_cursor"), records="data",
    )
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.connectors.http_push import Pushed, push
from legato.connectors.pagination import (
    BodyPath,
    Cursor,
    LinkHeader,
    Offset,
    PageNumber,
    Paginator,
    Request,
    find,
)
from legato.connectors.sinks import sink_for
from legato.connectors.targets import atomic_open, filesystem_for, fill_path, format_of

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa
    from fsspec import AbstractFileSystem

    from legato.definitions.context import Context

#: Bytes of responses received between two garbage collections in ``iter_pages``.
COLLECT_AFTER_BYTES = 16 * 2**20

__all__ = [
    "Cursor",
    "Extracted",
    "LinkHeader",
    "Offset",
    "Page",
    "PageNumber",
    "Pushed",
    "extract",
    "iter_pages",
    "push",
]


@dataclass(frozen=True)
class Page:
    """One page: its number (from 1), its records, and the response they came in."""

    number: int
    records: list[Any]
    response: httpx.Response


@dataclass(frozen=True)
class Extracted:
    """What ``extract`` wrote: the path (placeholders filled), rows and pages."""

    path: str
    rows: int
    pages: int


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _records_of(body: Any, records: BodyPath | None, url: str) -> list[Any]:
    found = body if records is None else find(records, body)
    if found is None:
        return []
    if not isinstance(found, list):
        where = "the body" if records is None else f"records={records!r}"
        raise ValueError(
            f"{url}: {where} is a {type(found).__name__}, not a list of records "
            "(records= is a JMESPath expression such as 'data.items', or a callable)"
        )
    return found


def iter_pages(
    client: httpx.Client,
    url: str,
    *,
    paginate: Paginator | None = None,
    records: BodyPath | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_pages: int | None = None,
) -> Iterator[Page]:
    """The pages of ``url`` (relative to the client's base URL, or absolute), asked for one
    at a time as the loop wants them.

    ``paginate`` is ``PageNumber()``, ``Offset()``, ``Cursor(next=...)`` or
    ``LinkHeader()`` (default: one page only). ``records`` finds the records in a page's JSON
    body: a JMESPath expression or a callable; None means the body is the list. An answer
    other than 2xx (after the client's own retries) raises ``httpx.HTTPStatusError``.
    """
    if max_pages is not None and max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    import httpx

    # httpx replaces a URL's query with params= when given: move the query into them.
    parsed = httpx.URL(url)
    first = {**dict(parsed.params), **dict(params or {})}
    url = str(parsed.copy_with(query=None))
    request: Request | None = paginate.first(url, first) if paginate else Request(url, first)
    number = received = 0
    origin: tuple[str, str, int | None] | None = None
    while request is not None:
        if received >= COLLECT_AFTER_BYTES:
            # An httpx response and its stream refer to each other, so a page's body is
            # freed only by a full collection, which a loop making few long-lived objects
            # seldom triggers: without this, memory grows by a page per page.
            gc.collect()
            received = 0
        outgoing = client.build_request(
            "GET", request.url, params=dict(request.params) or None, headers=headers
        )
        if origin is not None and _origin(outgoing.url) != origin:
            # The client's credentials would go with it: a next page is the same API's.
            raise ValueError(
                f"the next page is on another host ({outgoing.url}); pages are followed "
                "within the first page's scheme, host and port"
            )
        response = client.send(outgoing)
        origin = origin or _origin(response.url)
        response.raise_for_status()
        received += len(response.content)
        body = response.json()
        page_records = _records_of(body, records, str(response.url))
        if not page_records:
            return
        number += 1
        yield Page(number, page_records, response)
        if paginate is None or (max_pages is not None and number >= max_pages):
            return
        request = paginate.after(request, response, body, page_records)


def extract(
    client: httpx.Client,
    url: str,
    to: str,
    *,
    paginate: Paginator | None = None,
    records: BodyPath | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_pages: int | None = None,
    ctx: Context | None = None,
    fields: Mapping[str, Any] | None = None,
    format: str | None = None,
    schema: pa.Schema | None = None,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Extracted:
    """Write the pages of ``url`` to ``to`` as they come, and say how much was written.

    ``to`` is an fsspec URL or, with ``filesystem``, a path in it; its placeholders
    (``{partition}``, a partition dimension's name, ``{window_start:%Y-%m-%d}``, ...) are
    filled from ``ctx`` and ``fields``. The format is Parquet or JSON lines, from the suffix
    (``.parquet``, ``.jsonl``, optionally compressed: ``.jsonl.gz``) or ``format``. Parquet's
    schema is the first page's unless ``schema`` gives it; later pages are cast to it. The
    file appears whole once the last page is written, or not at all.
    The other arguments are ``iter_pages``'.
    """
    path = fill_path(to, ctx, fields)
    fmt = format_of(path, format)
    fs, fs_path = filesystem_for(path, filesystem, storage_options)
    rows = pages = 0
    with atomic_open(fs, fs_path) as fh:
        sink = sink_for(fmt, fh, schema)
        try:
            for page in iter_pages(
                client,
                url,
                paginate=paginate,
                records=records,
                params=params,
                headers=headers,
                max_pages=max_pages,
            ):
                sink.write(page.records)
                rows += len(page.records)
                pages += 1
        finally:
            # Also on an error: the file is then dropped, but a writer left open would
            # write to it after it is closed.
            sink.close()
    return Extracted(path=path, rows=rows, pages=pages)
