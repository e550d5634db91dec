"""How much a client can make the server read, store and send back.

A request body is bounded ([limits] request_bytes, 1 MiB by default: 413); a webhook's
caller without the token gets its 401 before any of its body is read; a run's params are
bounded wherever they come from ([limits] params_bytes); an error answer quotes a rejected
value only in part.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from legato.services.service_errors import ServiceError
from tests.api.conftest import Api
from tests.helpers import door

MiB = 1024 * 1024


def hook_token(api: Api) -> str:
    return api.hook_token()


def test_a_body_over_the_limit_is_413_and_stores_nothing(api: Api) -> None:
    big = {"params": {"label": "x" * (2 * MiB)}}
    for path, body in (
        ("/pipelines/greet/runs", big),
        ("/backfills", {"pipeline": "days", "partitions": ["x" * (2 * MiB)]}),
        ("/runs/nope/rerun", {"task": "x" * (2 * MiB)}),
    ):
        r = api.post(path, body)
        assert r.status_code == 413, (path, r.text[:200])
        assert r.json() == {"error": r.json()["error"], "field": None}
        assert "larger than 1048576 bytes" in r.json()["error"]
    r = api.post("/hooks/greet/hook", big, headers={"X-Legato-Token": hook_token(api)})
    assert r.status_code == 413 and "request_bytes" in r.json()["error"]
    assert api.get("/runs").json()["runs"] == []
    assert api.get("/backfills").json() == []


def test_a_body_sent_in_chunks_is_cut_off_at_the_limit(api: Api) -> None:
    # No Content-Length: the server counts what arrives and stops past the limit.
    sent = []

    def chunks() -> Iterator[bytes]:
        yield b'{"params": {"label": "'
        for _ in range(50):
            sent.append(1)
            yield b"x" * (256 * 1024)
        yield b'"}}'

    r = api.client.post(
        "/api/v1/pipelines/greet/runs",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413, r.text[:200]
    assert api.get("/runs").json()["runs"] == []


def test_the_limit_comes_from_legato_toml(make_api: Callable[..., Api]) -> None:
    api = make_api(toml="\n[limits]\nrequest_bytes = 2000\n")
    assert api.post("/pipelines/greet/runs", {"params": {"label": "x" * 1500}}).status_code == 201
    r = api.post("/pipelines/greet/runs", {"params": {"label": "x" * 2500}})
    assert r.status_code == 413 and "larger than 2000 bytes" in r.json()["error"]


def asgi_post(app: Any, path: str, headers: dict[str, str], chunks: int) -> tuple[int, int]:
    """POST to the ASGI app a body of ``chunks`` chunks of 1 MiB (Content-Length announced);
    (status, how many chunks the app read)."""
    read = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= chunks:
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": b"x" * MiB, "more_body": read < chunks}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(chunks * MiB).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8765),
    }
    asyncio.run(app(scope, receive, send))
    return status, read


def test_a_webhook_without_its_token_reads_no_body(api: Api) -> None:
    # Four unauthenticated 50 MB calls once took the server to 585 MB: the body was read
    # before the token was checked.
    app = api.client.app
    for headers in ({}, {"X-Legato-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
        status, read = asgi_post(app, "/api/v1/hooks/greet/hook", headers, chunks=50)
        assert (status, read) == (401, 0), headers
    status, read = asgi_post(app, "/api/v1/hooks/greet/nope", {}, chunks=50)
    assert (status, read) == (404, 0)
    # With the token, a body announced larger than the limit is refused before it is read.
    status, read = asgi_post(
        app, "/api/v1/hooks/greet/hook", {"X-Legato-Token": hook_token(api)}, chunks=50
    )
    assert (status, read) == (413, 0)
    assert api.get("/runs").json()["runs"] == []


def test_error_answers_quote_rejected_values_in_part(api: Api) -> None:
    long = "y" * 500_000
    for body in (
        {"params": {"n": long}},  # a value the param's type refuses
        {"params": {long: 1}},  # a param the pipeline does not have
        {"params": {"n": [long] * 2}},
    ):
        r = api.post("/pipelines/greet/runs", body)
        assert r.status_code == 422, r.text[:200]
        assert len(r.content) < 2000, r.text[:200]
        assert "yyyy" in r.json()["error"]  # some of it, to recognise it by
    r = api.post("/hooks/greet/hook", {"n": long}, headers={"X-Legato-Token": hook_token(api)})
    assert r.status_code == 422 and len(r.content) < 2000
    r = api.get("/pipelines/" + "p" * 20_000)
    assert r.status_code == 404 and len(r.content) < 2000
    assert api.get("/runs").json()["runs"] == []


def test_params_are_bounded_however_a_run_is_made(api: Api) -> None:
    # Under the request limit, over the params limit (256 KiB by default).
    r = api.post("/pipelines/greet/runs", {"params": {"label": "x" * 300_000}})
    assert r.status_code == 422, r.text[:200]
    assert r.json()["field"] == "params" and "params_bytes" in r.json()["error"]
    r = api.post(
        "/hooks/greet/hook",
        {"label": "x" * 300_000},
        headers={"X-Legato-Token": hook_token(api)},
    )
    assert r.status_code == 422 and r.json()["field"] == "params"
    r = api.post("/backfills", {"pipeline": "days", "params": {"x": 1}, "all": True})
    assert r.status_code == 422  # days has no params: the usual check comes first
    # The services refuse it too: the CLI cannot store a 50 MB param either.
    services = door(api.ws)
    huge = {"label": "x" * (50 * MiB)}
    for make in (
        lambda: services.runs.create_run("greet", huge),
        lambda: services.runs.create_run("greet", huge, from_text=True),  # legato submit -p
        lambda: services.automation.submit("greet", huge),
        lambda: services.automation.fire("greet", run_key="k", origin="test", params=huge),
    ):
        with pytest.raises(ServiceError) as info:
            make()
        assert info.value.field == "params" and len(str(info.value)) < 300
    assert api.get("/runs").json()["runs"] == []
    # Just under the limit is fine.
    text = "x" * (256 * 1024 - len(json.dumps({"n": 1, "label": "", "ratio": None})) - 10)
    assert api.post("/pipelines/greet/runs", {"params": {"label": text}}).status_code == 201


def test_the_params_limit_comes_from_legato_toml(make_api: Callable[..., Api]) -> None:
    api = make_api(toml="\n[limits]\nparams_bytes = 100\n")
    assert api.post("/pipelines/greet/runs", {"params": {"label": "x" * 20}}).status_code == 201
    r = api.post("/pipelines/greet/runs", {"params": {"label": "x" * 200}})
    assert r.status_code == 422 and "more than the 100" in r.json()["error"]
