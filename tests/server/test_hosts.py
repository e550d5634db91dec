"""The Host and Origin checks of the real app: no DNS rebinding, no cross-site commands."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.server.app import create_app
from legato.server.hosts import is_loopback, served_hosts
from legato.services.actor import Actor
from legato.services.workspace import Workspace
from tests.helpers import bearer, door, make_project

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

CODE = """
from legato import pipeline, task
from legato.triggers import webhook

@task(in_process=True)
def work() -> int:
    return 1

@pipeline(triggers=[webhook("hook")])
def etl():
    work()
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(make_project(tmp_path / "proj", CODE))
    yield workspace
    workspace.close()


def client(ws: Workspace, base: str = "http://127.0.0.1:8765", **kw: object) -> TestClient:
    app = create_app(door(ws), **kw)  # type: ignore[arg-type]
    return TestClient(app, base_url=base, headers=bearer(ws))


def test_the_configured_address_and_loopback_names_are_served(ws: Workspace) -> None:
    # By default: the project's [daemon] host and port, and the loopback names with the port.
    for base in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        assert client(ws, base).get("/api/v1/health").status_code == 200, base


def test_a_foreign_host_is_refused(ws: Workspace) -> None:
    # A page whose name resolves to this machine (DNS rebinding) sends its own name as Host.
    for base in ("http://attacker.example:8765", "http://127.0.0.1:9999", "http://localhost"):
        r = client(ws, base).get("/api/v1/runs")
        assert r.status_code == 400, base
        assert "public_url" in r.json()["error"]
    r = client(ws).get("/", headers={"Host": "evil.example"})
    assert r.status_code == 400 and "evil.example" in r.text


def test_public_url_names_the_one_host(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj", CODE, extra='\n[web]\npublic_url = "https://legato.example.com"\n'
    )
    with Workspace(root) as ws:
        assert client(ws, "https://legato.example.com").get("/runs").status_code == 200
        assert client(ws, "https://legato.example.com:443").get("/runs").status_code == 200
        assert client(ws, "http://127.0.0.1:8765").get("/runs").status_code == 400
        # Behind a proxy that speaks plain HTTP to it, the pages' origin is still public_url.
        proxied = client(ws, "http://legato.example.com:443")
        own = {"Origin": "https://legato.example.com"}
        assert proxied.post("/api/v1/pipelines/etl/runs", json={}, headers=own).status_code == 201
        other = {"Origin": "http://legato.example.com:443"}
        assert proxied.post("/api/v1/pipelines/etl/runs", json={}, headers=other).status_code == 403


def test_a_cross_site_post_is_refused_even_without_a_token(ws: Workspace) -> None:
    c = client(ws)
    launch = "/api/v1/pipelines/etl/runs"
    for headers in (
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},  # a sandboxed frame or a file
        {"Origin": "https://127.0.0.1:8765"},  # another scheme is another origin
        {"Referer": "http://attacker.example/page.html"},
    ):
        r = c.post(launch, json={}, headers=headers)
        assert r.status_code == 403, headers
        assert "cross-site" in r.json()["error"]
    # The webhook needs only its token: a browser on another site still cannot call it.
    hook = "/api/v1/hooks/etl/hook"
    assert c.post(hook, json={}, headers={"Origin": "http://attacker.example"}).status_code == 403
    assert ws.door(Actor.local_user()).catalog.runs().runs == ()  # nothing was queued


def test_the_own_origin_and_callers_without_one_pass(ws: Workspace) -> None:
    c = client(ws)
    launch = "/api/v1/pipelines/etl/runs"
    own = {"Origin": "http://127.0.0.1:8765"}
    assert c.post(launch, json={}, headers=own).status_code == 201
    referer = {"Referer": "http://127.0.0.1:8765/pipelines/etl"}
    assert c.post(launch, json={}, headers=referer).status_code == 201
    assert c.post(launch, json={}).status_code == 201  # curl, a script: no Origin, no Referer
    # Reading from anywhere is the Host check's business, not the origin's.
    assert c.get("/api/v1/runs", headers={"Origin": "http://attacker.example"}).status_code == 200
    # A webhook sender (no Origin) reaches the token check.
    assert c.post("/api/v1/hooks/etl/hook", json={}).status_code == 401


def test_loopback_and_served_names() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.1.2.3", "example.com", ""))
    assert served_hosts(None, "127.0.0.1", 8000) == {
        "127.0.0.1:8000",
        "localhost:8000",
        "[::1]:8000",
    }
    assert served_hosts("https://ops.example.com", "0.0.0.0", 8000) == {"ops.example.com:443"}
    assert served_hosts("http://ops.example.com:8080", "0.0.0.0", 80) == {"ops.example.com:8080"}


def test_only_the_saml_assertion_consumer_takes_posts_from_another_site(ws: Workspace) -> None:
    # An identity provider's page posts its SAML Response from its own site, by design; the
    # Response proves itself there (here: none is set up, so it is refused by the route).
    c = TestClient(create_app(door(ws)), base_url="http://127.0.0.1:8765")
    idp = {"Origin": "https://idp.example.com"}
    acs = c.post("/auth/saml/acs", data={"SAMLResponse": "x", "RelayState": "y"}, headers=idp)
    assert acs.status_code == 401 and "cross-site" not in acs.text
    assert "this sign-in is unknown" in acs.text
    for path in ("/auth/saml/acs/", "/signin", "/auth/saml/done"):
        assert c.post(path, data={}, headers=idp).status_code == 403, path
