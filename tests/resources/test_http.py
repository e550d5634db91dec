"""The ``http`` kind against a real local HTTP server the test starts: base URL, headers and
auth as the server sees them, retries on 429 (Retry-After in seconds and as a date) and 5xx,
which requests are never retried, the rate limit across threads, timeouts and check."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from legato.resources.http import HttpResource
from legato.resources.http_transport import retry_after_seconds
from legato.resources.kind import ResourceError, kind_class
from tests.helpers import free_port
from tests.resources.servers import Server, self_signed, serve_http


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
    http_server: Server, opened: Any
) -> None:
    client = opened(
        {
            "base_url": http_server.url + "/v2/",
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


def test_bearer_token_and_redirects(http_server: Server, opened: Any) -> None:
    client = opened({"base_url": http_server.url, "auth": {"token": "t0k"}})
    answer = client.get("/redirect")
    assert answer.status_code == 200
    assert answer.json()["headers"]["Authorization"] == "Bearer t0k"
    other = opened({"base_url": http_server.url, "auth": {"token": "t0k", "scheme": "Token"}})
    assert other.get("/echo").json()["headers"]["Authorization"] == "Token t0k"


def test_429_is_retried_after_the_seconds_retry_after_asks(
    http_server: Server, opened: Any
) -> None:
    http_server.script("/limited", (429, {"Retry-After": "1"}))
    client = opened({"base_url": http_server.url, "backoff": 0.01})
    assert client.get("/limited").status_code == 200
    first, second = http_server.on("/limited")
    assert second.at - first.at >= 1.0


def test_retry_after_as_an_http_date(http_server: Server, opened: Any) -> None:
    then = datetime.fromtimestamp(int(time.time()) + 2, UTC)
    http_server.script("/limited", (429, {"Retry-After": format_datetime(then, usegmt=True)}))
    client = opened({"base_url": http_server.url, "backoff": 0.01})
    assert client.get("/limited").status_code == 200
    _, second = http_server.on("/limited")
    assert second.wall >= then.timestamp()


def test_503_twice_then_200(http_server: Server, opened: Any) -> None:
    http_server.script("/flaky", (503, {}), (503, {}))
    client = opened({"base_url": http_server.url, "backoff": 0.01})
    answer = client.get("/flaky")
    assert answer.status_code == 200
    assert len(http_server.on("/flaky")) == 3


def test_retries_give_up_with_the_last_answer(http_server: Server, opened: Any) -> None:
    http_server.script("/down", *[(503, {})] * 10)
    client = opened({"base_url": http_server.url, "backoff": 0.01, "retries": 2})
    assert client.get("/down").status_code == 503
    assert len(http_server.on("/down")) == 3


def test_a_retry_after_beyond_max_retry_wait_is_returned_at_once(
    http_server: Server, opened: Any
) -> None:
    http_server.script("/limited", (429, {"Retry-After": "3600"}))
    client = opened({"base_url": http_server.url, "max_retry_wait": 5})
    assert client.get("/limited").status_code == 429
    assert len(http_server.on("/limited")) == 1


def test_a_post_is_retried_on_5xx_only_with_an_idempotency_key(
    http_server: Server, opened: Any
) -> None:
    client = opened({"base_url": http_server.url, "backoff": 0.01})
    http_server.script("/orders", (503, {}), (503, {}))
    assert client.post("/orders", json={"id": 1}).status_code == 503
    assert len(http_server.on("/orders")) == 1
    answer = client.post("/orders", json={"id": 1}, headers={"Idempotency-Key": "run-1/0"})
    assert answer.status_code == 200
    assert answer.json()["body"] == '{"id":1}'
    assert len(http_server.on("/orders")) == 3
    # A 429 says the request was not done: retried whatever the method.
    http_server.script("/orders", (429, {"Retry-After": "0"}))
    assert client.post("/orders", json={"id": 2}).status_code == 200
    assert len(http_server.on("/orders")) == 5


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


def test_rate_limit_is_shared_by_the_threads_of_a_process(http_server: Server, opened: Any) -> None:
    rate, count = 20, 30
    client = opened({"base_url": http_server.url, "rate_limit": rate})
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: client.get(f"/item/{i}").status_code, range(count)))
    assert codes == [200] * count
    arrivals = sorted(h.at for h in http_server.hits)
    # Requests are spaced 1/rate apart: never more than `rate` in a second (one more where a
    # late request lands next to the following one), and all of them take (count-1)/rate.
    per_second = Counter(int((t - arrivals[0]) * 1000) // 1000 for t in arrivals)
    assert max(per_second.values()) <= rate + 1
    assert arrivals[-1] - arrivals[0] >= (count - 1) / rate * 0.95


def test_verify_with_a_ca_bundle_in_the_project(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = tmp_path / "project"
    (project / "certs").mkdir(parents=True)
    cert, key = self_signed(project / "certs")
    with serve_http(tls=(cert, key)) as server:
        trusting = http({"base_url": server.url, "verify": "certs/cert.pem", "root": str(project)})
        client = trusting.open()
        try:
            assert client.get("/echo").status_code == 200
        finally:
            trusting.close(client)
        # Without it, the server's certificate is refused at once: no retry can change that.
        default = http({"base_url": server.url, "backoff": 0.01})
        client = default.open()
        with (
            caplog.at_level(logging.WARNING, "legato.resources.http"),
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get("/echo")
        default.close(client)
        assert [r for r in caplog.records if "try" in r.getMessage()] == []
        assert len(server.on("/echo")) == 1


def test_timeout_in_seconds(http_server: Server, opened: Any) -> None:
    client = opened({"base_url": http_server.url, "timeout": 0.2, "retries": 0})
    with pytest.raises(httpx.ReadTimeout):
        client.get("/slow")


def test_check_requests_check_path_and_fails_on_5xx(http_server: Server) -> None:
    resource = http({"base_url": http_server.url, "check_path": "/health", "retries": 0})
    client = resource.open()
    try:
        said = resource.check(client)
        assert said.startswith(f"GET {http_server.url}/health answered 200 OK in ")
        http_server.script("/health", (404, {}))
        assert "answered 404 Not Found" in resource.check(client)  # answered: it is up
        http_server.script("/health", (500, {}))
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
        ({"backoff": -1}, "'backoff' must be positive"),
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
