"""The Resources page: a viewer sees each resource's kind, masked settings, pool and tasks,
and no way to check them; an operator signed in with a browser checks one or all through a
form carrying the session's CSRF token and sees how each went. Names and settings holding
markup are shown as text."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.server.app import create_app
from legato.services.workspace import Workspace
from tests.api.test_resources_api import HUSH, PLAIN_TOKEN, SCRIPT, resource_workspace
from tests.helpers import door, signed_client
from tests.server.test_signin import PASSWORD, sign_in

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

ESCAPED = "&lt;script&gt;alert(&#39;res&#39;)&lt;/script&gt;"


@pytest.fixture
def ws(tmp_path: Path, pg_url: str) -> Iterator[Workspace]:
    with resource_workspace(tmp_path, pg_url) as w:
        yield w


def browser(ws: Workspace, role: str) -> TestClient:
    """A browser signed in to the web UI as a new user of ``role``."""
    door(ws).accounts.add_user(role, role, PASSWORD)
    client = TestClient(create_app(door(ws), allowed_hosts=["testserver"]))
    assert sign_in(client, role).status_code == 303
    return client


def rows(html: str) -> dict[str, str]:
    """Each resource's table row, by the name in its ``data-resource``."""
    found = re.findall(r'<tr data-resource="([^"]*)">(.*?)</tr>', html, re.S)
    return dict(found)


def test_a_viewer_sees_the_resources_and_no_check(ws: Workspace, tmp_path: Path) -> None:
    page = signed_client(ws, "viewer").get("/resources")
    assert page.status_code == 200, page.text
    assert '<a href="/resources" class="on">Resources</a>' in page.text
    shown = rows(page.text)
    assert sorted(shown) == sorted([ESCAPED, "ghost", "shop"])
    shop = shown["shop"]
    assert "<td>sql</td>" in shop and "<td>db</td>" in shop
    assert f"url = sqlite:///{tmp_path / 'data' / 'shop.db'}" in shop
    assert '<a href="/pipelines/nightly">nightly.load</a>' in shop
    assert "url = " in shown["ghost"] and "${secret:ghost_db}" in shown["ghost"]
    assert 'options = {&#34;token&#34;: &#34;****&#34;}' in shown[ESCAPED]
    assert "Check" not in page.text and "/resources/check" not in page.text
    assert PLAIN_TOKEN not in page.text and HUSH not in page.text
    # The name and the URL holding a script are text: escaped, never markup.
    assert SCRIPT not in page.text and ESCAPED in page.text


def test_an_operator_checks_all_then_one_with_the_pages_csrf_token(ws: Workspace) -> None:
    client = browser(ws, "operator")
    page = client.get("/resources")
    assert page.status_code == 200 and "Check all" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    # The form's token is what lets the change through.
    forged = client.post("/resources/check", data={"csrf": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert door(ws).audit.entries(action="resources.check") == []

    done = client.post("/resources/check", data={"csrf": csrf.group(1)})
    assert done.status_code == 200, done.text
    shown = rows(done.text)
    assert '<span class="check-ok">ok</span>' in shown["shop"]
    assert "SELECT 1 answered by SQLite" in shown["shop"]
    assert '<span class="check-failed">failed</span>' in shown["ghost"]
    assert "database &#34;****&#34; does not exist" in shown["ghost"]
    assert re.search(r'<span class="muted">in \d+(\.\d)?m?s</span>', shown["ghost"])
    assert HUSH not in done.text and SCRIPT not in done.text

    one = client.post("/resources/check", data={"csrf": csrf.group(1), "name": "shop"})
    shown = rows(one.text)
    assert "check-ok" in shown["shop"] and "check-" not in shown["ghost"]
    checks = door(ws).audit.entries(action="resources.check")
    assert [(e.actor, e.outcome) for e in checks] == [("http:operator", "ok")] * 2


def test_a_viewer_posting_the_check_form_is_refused(ws: Workspace) -> None:
    client = browser(ws, "viewer")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/resources").text)
    assert csrf
    refused = client.post("/resources/check", data={"csrf": csrf.group(1), "name": "shop"})
    assert refused.status_code == 403 and "resources.check" in refused.text
