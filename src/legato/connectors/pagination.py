"""How an API's pages follow each other: by page number, by offset and limit, by a cursor
(a token, or the next page's URL, found in the body), or by the Link header's ``rel="next"``.

Each style says what the first request is and, from a page's response, what the next one
is (None when there is none). Paths into a JSON body are JMESPath expressions
(``"meta.next_cursor"``, ``"data.items"``) or callables given the parsed body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

__all__ = ["Cursor", "LinkHeader", "Offset", "PageNumber", "Paginator", "Request", "find"]

#: Where something is in a JSON body: a JMESPath expression, or a callable given the body.
BodyPath = str | Callable[[Any], Any]


@lru_cache(maxsize=64)
def _compiled(expression: str) -> Any:
    import jmespath

    return jmespath.compile(expression)


def find(path: BodyPath, body: Any) -> Any:
    """What ``path`` finds in ``body`` (None where nothing is)."""
    if callable(path):
        return path(body)
    return _compiled(path).search(body)


@dataclass(frozen=True)
class Request:
    """One page's request: a URL (absolute, or relative to the client's base URL) and its
    query parameters."""

    url: str
    params: Mapping[str, Any] = field(default_factory=dict)


class Paginator(Protocol):
    """A pagination style."""

    def first(self, url: str, params: Mapping[str, Any]) -> Request:
        """The first page's request."""
        ...

    def after(
        self, request: Request, response: httpx.Response, body: Any, records: list[Any]
    ) -> Request | None:
        """The request after ``request``'s page (which held ``records``), or None."""
        ...


@dataclass(frozen=True)
class PageNumber:
    """``?page=1``, ``?page=2``, ...; ``size`` (sent as ``size_param``) asks for a page size."""

    param: str = "page"
    start: int = 1
    size: int | None = None
    size_param: str = "per_page"

    def first(self, url: str, params: Mapping[str, Any]) -> Request:
        sized = {self.size_param: self.size} if self.size is not None else {}
        return Request(url, {**params, **sized, self.param: self.start})

    def after(
        self, request: Request, response: httpx.Response, body: Any, records: list[Any]
    ) -> Request | None:
        return Request(request.url, {**request.params, self.param: request.params[self.param] + 1})


@dataclass(frozen=True)
class Offset:
    """``?offset=0&limit=100``, then ``offset=100``, ...: the offset moves by the number of
    records each page held, so an API that caps the limit lower still pages correctly."""

    limit: int = 100
    offset_param: str = "offset"
    limit_param: str = "limit"
    start: int = 0

    def first(self, url: str, params: Mapping[str, Any]) -> Request:
        return Request(url, {**params, self.offset_param: self.start, self.limit_param: self.limit})

    def after(
        self, request: Request, response: httpx.Response, body: Any, records: list[Any]
    ) -> Request | None:
        moved = request.params[self.offset_param] + len(records)
        return Request(request.url, {**request.params, self.offset_param: moved})


@dataclass(frozen=True)
class Cursor:
    """A token in each page's body (``next``: a JMESPath expression or a callable given the
    body) sent back as ``param`` for the next page; no token (null or empty) ends it.

    With ``param=None`` the value found is the next page's URL (absolute or relative to the
    page's), as in ``{"next": "/orders?after=abc"}``.
    """

    next: BodyPath
    param: str | None = "cursor"

    def first(self, url: str, params: Mapping[str, Any]) -> Request:
        return Request(url, dict(params))

    def after(
        self, request: Request, response: httpx.Response, body: Any, records: list[Any]
    ) -> Request | None:
        token = find(self.next, body)
        if token is None or token == "":
            return None
        if self.param is None:
            return Request(str(response.url.join(str(token))))
        return Request(request.url, {**request.params, self.param: token})


@dataclass(frozen=True)
class LinkHeader:
    """The URL in the response's ``Link`` header with ``rel`` (RFC 8288), as GitHub's API
    pages; no such link ends it."""

    rel: str = "next"

    def first(self, url: str, params: Mapping[str, Any]) -> Request:
        return Request(url, dict(params))

    def after(
        self, request: Request, response: httpx.Response, body: Any, records: list[Any]
    ) -> Request | None:
        link = response.links.get(self.rel)
        if not link or not link.get("url"):
            return None
        return Request(str(response.url.join(link["url"])))
