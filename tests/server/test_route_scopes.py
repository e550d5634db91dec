"""Every route the app serves, from its own route table, for API tokens scoped to pipelines:
what is out of scope is 404 when named (a pipeline, a run, a backfill, in a path or a body)
and absent from every list; what is in scope works. A route added later that forgets the
scope fails here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from legato.server.app import create_app
from legato.services.workspace import Workspace
from tests.api.conftest import CODE
from tests.helpers import door, make_project
from tests.server.test_route_permissions import ADMIN_READS, BODIES, PUBLIC, _flat


@dataclass(frozen=True)
class Named:
    """What a route's path parameters name: a pipeline and things of it."""

    pipeline: str
    run_id: str
    backfill_id: str
    backfill_pipeline: str  # partitioned

    def values(self, template: str) -> dict[str, str]:
        # {name} is a pipeline on the UI's pages, a schedule or a trigger of one on the API.
        name = self.pipeline
        if "/schedules/{name}" in template:
            name = "nightly"
        elif "/triggers/{name}" in template:
            name = "hook"
        # Partitions are the partitioned pipeline's (the backfill's).
        partitions = template.endswith(("/partitions", "/partitions/summary"))
        pipeline = self.backfill_pipeline if partitions else self.pipeline
        return {
            "pipeline": pipeline,
            "name": name,
            "run_id": self.run_id,
            "task_key": "hello",
            "attempt": "1",
            "backfill_id": self.backfill_id,
            "key": "greetings",  # an asset every pipeline produces
        }

    def body(self, method: str, template: str) -> Any:
        body = BODIES.get((method, template))
        if isinstance(body, dict) and "pipeline" in body:
            # A body naming a pipeline names one of these.
            pipe = self.backfill_pipeline if template.endswith("/backfills") else self.pipeline
            body = {**body, "pipeline": pipe}
        return body


@dataclass
class Site:
    client: Any
    ws: Workspace
    routes: list[tuple[str, str]]  # (method, path template), public ones left out
    greet: Named  # a finished run of greet, a backfill of days
    flaky: Named  # a finished (failed) run of flaky, the same backfill of days
    hidden_runs: dict[str, list[str]]  # pipeline -> ids of its runs

    def token(self, *scope: str) -> str:
        """A new operator's API token scoped to ``scope``."""
        made = door(self.ws).accounts.create_token(
            f"scoped-{'-'.join(scope) or 'all'}-{os.urandom(3).hex()}", "operator", scope=scope
        )
        return made.token

    def call(self, method: str, template: str, token: str, named: Named | None) -> Any:
        values = named.values(template) if named is not None else {}
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], template)
        return self.client.request(
            method,
            path,
            headers={"Authorization": f"Bearer {token}"},
            json=named.body(method, template) if named else BODIES.get((method, template)),
            follow_redirects=False,
        )

    def naming(self) -> list[tuple[str, str]]:
        """Routes that name a pipeline, a run or a backfill: in their path or their body."""
        return [
            (m, t)
            for m, t in self.routes
            if re.search(r"\{(pipeline|name|run_id|backfill_id)\}", t)
            or "pipeline" in (BODIES.get((m, t)) or {})
        ]

    def lists(self) -> list[str]:
        """Routes that name nothing and read: the lists (and pages of them). A route with any
        path parameter (an asset's ``{key}`` too) names something."""
        named = set(self.naming())
        return [t for m, t in self.routes if m == "GET" and (m, t) not in named and "{" not in t]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from fastapi.testclient import TestClient

    ws = Workspace(make_project(tmp_path / "proj", CODE))
    admin = door(ws)
    app = create_app(admin, allowed_hosts=["testserver"])
    greet = admin.runs.run_pipeline("greet")
    flaky = admin.runs.run_pipeline("flaky")  # fails in its middle task
    queued = [admin.runs.create_run("flaky"), admin.runs.create_run("days", partition=None)]
    backfill = admin.automation.create_backfill("days", keys=["2026-02-24"])
    routes = []
    for route in _flat(app.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and (method, route.path) not in PUBLIC:
                routes.append((method, route.path))
    hidden = {
        "flaky": [flaky.id, queued[0].id],
        "days": [queued[1].id],
        "greet": [greet.id],
    }
    with TestClient(app) as client:
        yield Site(
            client,
            ws,
            routes,
            Named("greet", greet.id, backfill.id, "days"),
            Named("flaky", flaky.id, backfill.id, "days"),
            hidden,
        )
    ws.close()


def test_every_route_naming_what_is_out_of_scope_answers_404(site: Site) -> None:
    greet_only = site.token("greet")  # flaky and days (the backfill's) are out of scope
    flaky_only = site.token("flaky")  # greet (schedules, a trigger) and days are
    naming = site.naming()
    assert len(naming) > 25
    for token, named in ((greet_only, site.flaky), (flaky_only, site.greet)):
        for method, template in naming:
            r = site.call(method, template, token, named)
            assert r.status_code == 404, (named.pipeline, method, template, r.status_code, r.text)
    # Nothing of it happened: the admin sees every run as it was, the schedules unpaused.
    runs = door(site.ws).catalog.runs().runs
    assert sorted(r.id for r in runs) == sorted(i for ids in site.hidden_runs.values() for i in ids)
    assert not any(s.paused for s in door(site.ws).automation.schedules())
    assert not any(t.paused for t in door(site.ws).automation.triggers())


def test_no_list_mentions_what_is_out_of_scope(site: Site) -> None:
    admin = site.token()
    lists = site.lists()
    assert {"/api/v1/runs", "/api/v1/queue", "/api/v1/backfills", "/runs", "/queue"} <= set(lists)
    for scope, hidden in ((("greet",), ("flaky", "days")), (("flaky",), ("greet", "days"))):
        token = site.token(*scope)
        secrets = [i for p in hidden for i in site.hidden_runs[p]] + [site.greet.backfill_id]
        shown_to_admin = 0
        for template in lists:
            everything = site.call("GET", template, admin, None).text
            shown_to_admin += any(s in everything for s in secrets)
            r = site.call("GET", template, token, None)
            # The metrics name every pipeline: refused to a scoped token, not filtered.
            refused = ("GET", template) in ADMIN_READS or template == "/metrics"
            assert r.status_code == (403 if refused else 200), template
            leaked = [s for s in secrets if s in r.text]
            assert leaked == [], (scope, template, leaked)
        assert shown_to_admin >= 6  # the lists do list those to an unscoped actor
        for query in (f"/api/v1/runs?pipeline={hidden[0]}", "/api/v1/backfills?pipeline=days"):
            r = site.client.get(query, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and not any(s in r.text for s in secrets), query
    flaky_only = site.token("flaky")
    pipelines = site.client.get(
        "/api/v1/pipelines", headers={"Authorization": f"Bearer {flaky_only}"}
    )
    assert [p["name"] for p in pipelines.json()] == ["flaky"]


def test_every_route_naming_what_is_in_scope_works(site: Site) -> None:
    token = site.token("greet", "days")
    for method, template in site.naming():
        r = site.call(method, template, token, site.greet)
        if (method, template) in ADMIN_READS:
            assert r.status_code == 403, (method, template, r.status_code)
            continue
        # A conflict (cancel a finished run, move one not queued) is the route working.
        assert r.status_code in (200, 201, 409), (method, template, r.status_code, r.text[:300])
