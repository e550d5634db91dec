"""A real HTTP API for connector tests, served on 127.0.0.1 from a thread of the test.

It holds ``rows`` records ``{"id": i, "name": "n<i>", "amount": i * 1.5}`` and pages them
every way the HTTP connector follows:

- ``/pages?page=N&per_page=S`` -> ``{"data": [...]}`` (page numbers from 1)
- ``/offset?offset=O&limit=L`` -> ``{"items": [...]}`` (the limit capped at ``cap``)
- ``/cursor?cursor=T`` -> ``{"data": [...], "meta": {"next_cursor": T2 or null}}``
- ``/next?after=I`` -> ``{"results": [...], "next": "/next?after=I2" or null}``
- ``/link?page=N`` -> a JSON list, with ``Link: <...>; rel="next"`` while there is more
- ``POST /push`` -> stores a JSON batch once per ``Idempotency-Key`` (a repeat is answered
  200 and not stored again); ``fail`` maps a batch's arrival number (from 0) to the status
  to answer instead, once.

Every ``throttle_every``-th request is answered 429 with ``Retry-After: 0`` before being
served. ``on_request(path)`` is called before a page is served (a test looks at its sink
there). ``served`` lists the paths of pages served, ``pushes`` every push request seen.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class Push:
    key: str | None
    rows: list[Any]
    status: int


@dataclass
class Api:
    rows: int = 95
    page_size: int = 10
    cap: int = 1_000
    throttle_every: int = 0
    on_request: Callable[[str], None] | None = None
    fail: dict[int, int] = field(default_factory=dict)
    served: list[str] = field(default_factory=list)
    throttled: int = 0
    pushes: list[Push] = field(default_factory=list)
    stored: dict[str, list[Any]] = field(default_factory=dict)
    #: Other paths served as one of the above, e.g. {"/orders": "/cursor"}.
    aliases: dict[str, str] = field(default_factory=dict)
    #: The query of every page served.
    queries: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, i: int) -> dict[str, Any]:
        return {"id": i, "name": f"n{i}", "amount": i * 1.5}

    def slice(self, start: int, size: int) -> list[dict[str, Any]]:
        return [self.record(i) for i in range(start, min(start + size, self.rows))]

    def throttle(self) -> bool:
        with self._lock:
            self._count += 1
            hit = bool(self.throttle_every) and self._count % self.throttle_every == 0
            self.throttled += hit
            return hit

    def page(self, path: str, q: dict[str, str]) -> tuple[Any, dict[str, str]]:
        size = self.page_size
        path = self.aliases.get(path, path)
        self.queries.append(q)
        if path == "/pages":
            size = int(q.get("per_page", size))
            return {"data": self.slice((int(q["page"]) - 1) * size, size)}, {}
        if path == "/offset":
            return {"items": self.slice(int(q["offset"]), min(int(q["limit"]), self.cap))}, {}
        if path == "/cursor":
            start = int(q.get("cursor", "0"))
            more = start + size < self.rows
            meta = {"next_cursor": str(start + size) if more else None}
            return {"data": self.slice(start, size), "meta": meta}, {}
        if path == "/next":
            start = int(q.get("after", "0"))
            more = start + size < self.rows
            return {
                "results": self.slice(start, size),
                "next": f"/next?after={start + size}" if more else None,
            }, {}
        if path == "/link":
            n = int(q.get("page", "1"))
            more = n * size < self.rows
            link = {"Link": f'<{self.base_url}/link?page={n + 1}>; rel="next"'} if more else {}
            return self.slice((n - 1) * size, size), link
        raise KeyError(path)

    def take_push(self, key: str | None, body: bytes) -> int:
        with self._lock:
            number = len(self.pushes)
            status = self.fail.pop(number, 200)
            rows = json.loads(body)
            self.pushes.append(Push(key, rows, status))
            if status == 200 and key is not None and key not in self.stored:
                self.stored[key] = rows
            return status


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if api.throttle():
                self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
                return
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if api.on_request is not None:
                api.on_request(self.path)
            try:
                body, headers = api.page(parts.path, query)
            except KeyError:
                self._send(404, {"error": "no such path"}, {})
                return
            api.served.append(self.path)
            self._send(200, body, headers)

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = api.take_push(self.headers.get("Idempotency-Key"), data)
            self._send(status, {"ok": status == 200}, {})

    return Handler


@contextmanager
def serve(api: Api) -> Iterator[Api]:
    """``api`` served on a free port of 127.0.0.1 until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def api_client(base_url: str, retries: int = 5) -> httpx.Client:
    """The client a task gets from an ``http`` resource at ``base_url``: retrying 429 and
    5xx answers."""
    from legato.resources.http import HttpResource

    client: httpx.Client = HttpResource("api", {"base_url": base_url, "retries": retries}).open()
    return client
