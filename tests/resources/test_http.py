"""The ``http`` kind against a real local HTTP server the test starts: base URL, headers and
auth as the server sees them, retries on 429 (Retry-After in seconds and as a date) and 5xx,
which requests are never retried, the rate limit across threads, timeouts and check."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from legato.resources.http import HttpResource
from legato.resources.http_transport import retry_after_seconds
from legato.resources.kind import ResourceError, kind_class
from tests.helpers import free_port


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    at: float  # the server's monotonic clock when the request arrived


@dataclass
class Server:
    """A local HTTP server answering each path from a script of (status, headers) answers,
    then 200 with the request echoed as JSON; it records every request it gets."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        self.scripts[path].extend(answers)

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path.split("?")[0] == path]


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            with state.lock:
                state.hits.append(
                    Hit(self.command, self.path, dict(self.headers.items()), time.monotonic())
                )
                scripted = state.scripts[path].pop(0) if state.scripts[path] else None
            if path == "/slow":
                state.release.wait(60)
            status, headers = scripted or (200, {})
            if path == "/redirect" and scripted is None:
                status, headers = 302, {"Location": "/echo"}
            payload = json.dumps(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body.decode()}
            ).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


def http(settings: dict[str, Any]) -> HttpResource:
    resource = kind_class("http")("api", {"kind": "http", **settings})
    assert isinstance(resource, HttpResource)
    return resource


@pytest.fixture
def opened() -> Iterator[Any]:
    """``opened(settings)``: an http resource's client, closed after the test."""
    clients: list[tuple[HttpResource, httpx.Client]] = []

    def make(settings: dict[str, Any]) -> httpx.Client:
        resource = http(settings)
        client = resource.open()
        clients.append((resource, client))
        return client

    yield make
    for resource, client in clients:
        resource.close(client)


def test_base_url_headers_params_and_basic_auth_reach_the_server(
    server: Server, opened: Any
) -> None:
    client = opened(
        {
            "base_url": server.url + "/v2/",
            "headers": {"X-Team": "data", "X-Version": 2},
            "params": {"api_key": "k1"},
            "auth": {"user": "ann", "password": "s3cret"},
        }
    )
    seen = client.get("echo").json()
    assert seen["path"] == "/v2/echo?api_key=k1"
    assert seen["headers"]["X-Team"] == "data"
    assert seen["headers"]["X-Version"] == "2"
    assert seen["headers"]["Authorization"] == "Basic YW5uOnMzY3JldA=="  # ann:s3cret


def test_bearer_token_and_redirects(server: Server, opened: Any) -> None:
    client = opened({"base_url": server.url, "auth": {"token": "t0k"}})
    answer = client.get("/redirect")
    assert answer.status_code == 200
    assert answer.json()["headers"]["Authorization"] == "Bearer t0k"
    other = opened({"base_url": server.url, "auth": {"token": "t0k", "scheme": "Token"}})
    assert other.get("/echo").json()["headers"]["Authorization"] == "Token t0k"


def test_429_is_retried_after_the_seconds_retry_after_asks(server: Server, opened: Any) -> None:
    server.script("/limited", (429, {"Retry-After": "1"}))
    client = opened({"base_url": server.url, "backoff": 0.01})
    assert client.get("/limited").status_code == 200
    first, second = server.on("/limited")
    assert second.at - first.at >= 1.0


def test_retry_after_as_an_http_date(server: Server, opened: Any) -> None:
    # An HTTP-date has whole seconds: two seconds ahead is at least one second away.
    when = format_datetime(datetime.fromtimestamp(time.time() + 2, UTC), usegmt=True)
    server.script("/limited", (429, {"Retry-After": when}))
    client = opened({"base_url": server.url, "backoff": 0.01})
    assert client.get("/limited").status_code == 200
    first, second = server.on("/limited")
    assert second.at - first.at >= 1.0


def test_503_twice_then_200(server: Server, opened: Any) -> None:
    server.script("/flaky", (503, {}), (503, {}))
    client = opened({"base_url": server.url, "backoff": 0.01})
    answer = client.get("/flaky")
    assert answer.status_code == 200
    assert len(server.on("/flaky")) == 3


def test_retries_give_up_with_the_last_answer(server: Server, opened: Any) -> None:
    server.script("/down", *[(503, {})] * 10)
    client = opened({"base_url": server.url, "backoff": 0.01, "retries": 2})
    assert client.get("/down").status_code == 503
    assert len(server.on("/down")) == 3


def test_a_retry_after_beyond_max_retry_wait_is_returned_at_once(
    server: Server, opened: Any
) -> None:
    server.script("/limited", (429, {"Retry-After": "3600"}))
    client = opened({"base_url": server.url, "max_retry_wait": 5})
    assert client.get("/limited").status_code == 429
    assert len(server.on("/limited")) == 1


def test_a_post_is_retried_on_5xx_only_with_an_idempotency_key(server: Server, opened: Any) -> None:
    client = opened({"base_url": server.url, "backoff": 0.01})
    server.script("/orders", (503, {}), (503, {}))
    assert client.post("/orders", json={"id": 1}).status_code == 503
    assert len(server.on("/orders")) == 1
    answer = client.post("/orders", json={"id": 1}, headers={"Idempotency-Key": "run-1/0"})
    assert answer.status_code == 200
    assert answer.json()["body"] == '{"id":1}'
    assert len(server.on("/orders")) == 3
    # A 429 says the request was not done: retried whatever the method.
    server.script("/orders", (429, {"Retry-After": "0"}))
    assert client.post("/orders", json={"id": 2}).status_code == 200
    assert len(server.on("/orders")) == 5


def test_a_refused_connection_is_retried(opened: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = opened({"base_url": f"http://127.0.0.1:{free_port()}", "retries": 2, "backoff": 0.01})
    with (
        caplog.at_level(logging.WARNING, "legato.resources.http"),
        pytest.raises(httpx.ConnectError),
    ):
        client.get("/")
    tries = [r.getMessage() for r in caplog.records if "ConnectError" in r.getMessage()]
    assert len(tries) == 2
    assert "try 2 of 2" in tries[-1]


def test_rate_limit_is_shared_by_the_threads_of_a_process(server: Server, opened: Any) -> None:
    rate, count = 20, 30
    client = opened({"base_url": server.url, "rate_limit": rate})
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: client.get(f"/item/{i}").status_code, range(count)))
    assert codes == [200] * count
    arrivals = sorted(h.at for h in server.hits)
    # Requests are spaced 1/rate apart: never more than `rate` in a second (one more where a
    # late request lands next to the following one), and all of them take (count-1)/rate.
    per_second = Counter(int((t - arrivals[0]) * 1000) // 1000 for t in arrivals)
    assert max(per_second.values()) <= rate + 1
    assert arrivals[-1] - arrivals[0] >= (count - 1) / rate * 0.95


def test_timeout_in_seconds(server: Server, opened: Any) -> None:
    client = opened({"base_url": server.url, "timeout": 0.2, "retries": 0})
    with pytest.raises(httpx.ReadTimeout):
        client.get("/slow")


def test_check_requests_check_path_and_fails_on_5xx(server: Server) -> None:
    resource = http({"base_url": server.url, "check_path": "/health", "retries": 0})
    client = resource.open()
    try:
        said = resource.check(client)
        assert said.startswith(f"GET {server.url}/health answered 200 OK in ")
        server.script("/health", (404, {}))
        assert "answered 404 Not Found" in resource.check(client)  # answered: it is up
        server.script("/health", (500, {}))
        with pytest.raises(ResourceError, match="answered 500"):
            resource.check(client)
    finally:
        resource.close(client)
    bare = http({})
    assert "nothing to request" in bare.check(bare.open())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth": {"user": "a", "token": "t"}}, "either user"),
        ({"auth": {"password": "p"}}, "either user"),
        ({"auth": {"user": "a", "pass": "p"}}, "unknown key 'pass'"),
        ({"rate_limit": 0}, "'rate_limit' must be positive"),
        ({"retries": -1}, "'retries' must be 0 or more"),
        ({"timeout": "5s"}, "'timeout' must be a int or float"),
        ({"headers": {"X": ["a"]}}, r"headers.X must be a string"),
        ({"base_url": "http://x", "retry": 3}, "unknown setting 'retry'"),
    ],
)
def test_wrong_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceError, match=message):
        http(settings)


def test_retry_after_values() -> None:
    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(" 1.5 ", now) == 1.5
    assert retry_after_seconds("Fri, 20 Nov 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Fri, 20 Nov 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("-4", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
