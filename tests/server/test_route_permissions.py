"""Every route the app serves, from its own route table: anonymous callers are refused
(401 on the API, a redirect to the sign-in page elsewhere), a viewer is refused every change,
and reads are let through to a viewer except the admins' own. A route added without a
permission check, or one this test does not know, fails here."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount

from legato.server.app import create_app
from legato.services.workspace import Workspace
from tests.api.conftest import CODE
from tests.conftest import BACKENDS
from tests.helpers import api_token, door, make_project

#: Reachable without signing in, and why.
PUBLIC = {
    ("GET", "/signin"): "the sign-in page",
    ("POST", "/signin"): "signing in",
    ("GET", "/signin/link"): "a one-time sign-in link",
    ("POST", "/signout"): "signing out (ends the session in the cookie, if any)",
    ("GET", "/auth/oidc/login"): "single sign-on: off to the OpenID Connect provider",
    ("GET", "/auth/oidc/callback"): "single sign-on: the provider's answer proves itself",
    ("GET", "/auth/saml/login"): "single sign-on: off to the SAML identity provider",
    ("POST", "/auth/saml/acs"): "single sign-on: the signed SAML Response proves itself",
    ("GET", "/auth/saml/done"): "single sign-on: a checked SAML sign-in, in its own browser",
    ("GET", "/auth/saml/metadata"): "single sign-on: what the identity provider imports",
    ("POST", "/api/v1/hooks/{pipeline}/{trigger}"): "webhooks: the trigger's own token",
}
#: Reads only admins may make.
ADMIN_READS = {
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/audit"),
}
#: Reads operators may make and viewers may not: the settings in effect.
OPERATOR_READS = {("GET", "/api/v1/config")}
#: A valid body for each change, so that a refusal is the gate's and not the body's check.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/backfills"): {"pipeline": "days", "partitions": ["2026-02-23"]},
    ("POST", "/api/v1/queue/{run_id}/move"): {"to": "top"},
    ("POST", "/api/v1/runs/{run_id}/tasks/{task_key}/mark"): {"state": "succeeded"},
    ("POST", "/api/v1/pipelines/{pipeline}/runs"): {"params": {"n": 2}},
    ("POST", "/api/v1/runs/{run_id}/rerun"): {},
    ("POST", "/api/v1/alerts/rules/{rule}/silence"): {"for": "2h"},
    ("POST", "/api/v1/resources/check"): {"names": []},
    ("POST", "/api/v1/assets/{key}/materialize"): {"pipeline": "greet"},
}


@dataclass
class Site:
    client: Any
    values: dict[str, str]
    routes: list[tuple[str, str]]  # (method, path template)

    def call(self, method: str, template: str, token: str | None) -> Any:
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: self.values[m.group(1)], template)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = BODIES.get((method, template))
        return self.client.request(
            method, path, headers=headers, json=body, follow_redirects=False
        )


@pytest.fixture(params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Site]:
    from fastapi.testclient import TestClient

    extra = ""
    if request.param == "postgresql":
        extra = f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra))
    admin = door(ws)
    app = create_app(admin, allowed_hosts=["testserver"])
    run = admin.runs.run_pipeline("greet")  # finished: its live streams end at once
    backfill = admin.automation.create_backfill("days", keys=["2026-02-24"])
    values = {
        "pipeline": "greet",
        "name": "greet",
        "run_id": run.id,
        "task_key": "hello",
        "attempt": "1",
        "backfill_id": backfill.id,
        "trigger": "hook",
        "rule": "any_rule",
        "key": "greetings",
    }
    routes: list[tuple[str, str]] = []
    for route in _flat(app.routes):
        if isinstance(route.original_route if hasattr(route, "original_route") else route, Mount):
            assert route.path == "/static", f"an unexpected mount {route.path}"
            continue
        assert route.path and route.methods, route
        for method in sorted(route.methods):
            if method != "HEAD":
                routes.append((method, route.path))
    with TestClient(app) as client:
        yield Site(client, values, routes)
    ws.close()


def _flat(routes: list[Any]) -> list[Any]:
    # Newer FastAPI keeps included routers as such; its own iterator flattens them.
    import fastapi.routing

    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(routes)) if flatten is not None else list(routes)


def test_the_route_table_is_what_this_test_knows(site: Site) -> None:
    # Names in paths the test can fill: a new one needs a value above.
    for _, template in site.routes:
        for name in re.findall(r"\{(\w+)", template):
            assert name in site.values, f"{template}: no value for {{{name}}} in this test"
    assert len(site.routes) > 30


def test_anonymous_callers_get_401_on_the_api_and_the_sign_in_page_elsewhere(site: Site) -> None:
    for method, template in site.routes:
        if (method, template) in PUBLIC:
            continue
        r = site.call(method, template, None)
        if template.startswith("/api/") or template == "/metrics":  # programs: no redirect
            assert r.status_code == 401, (method, template, r.status_code, r.text[:200])
        else:
            assert r.status_code == 303, (method, template, r.status_code)
            assert r.headers["location"].startswith("/signin?next="), (method, template)


def test_a_viewer_is_refused_every_change_and_may_read(site: Site, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "proj")
    try:
        viewer = api_token(ws, "viewer")
    finally:
        ws.close()
    for method, template in site.routes:
        if (method, template) in PUBLIC:
            continue
        r = site.call(method, template, viewer)
        if method == "GET" and (method, template) not in ADMIN_READS | OPERATOR_READS:
            assert r.status_code not in (401, 403), (method, template, r.status_code, r.text)
        else:
            assert r.status_code == 403, (method, template, r.status_code, r.text[:300])


def test_an_operator_may_act_and_the_audit_trail_says_who(site: Site, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "proj")
    try:
        operator = api_token(ws, "operator")
        queued = door(ws).runs.create_run("greet")
        r = site.client.post(
            f"/api/v1/runs/{queued.id}/cancel", headers={"Authorization": f"Bearer {operator}"}
        )
        assert r.status_code == 200, r.text
        rows = ws.store.audit.entries(action="runs.cancel")
    finally:
        ws.close()
    assert [(x.actor.startswith("http:token:"), x.auth, x.outcome) for x in rows] == [
        (True, "token", "ok")
    ]
    assert rows[0].target == queued.id
