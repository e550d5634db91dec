"""Signing in to the web UI: the sign-in form with its own CSRF token, sessions in an HttpOnly
cookie with expiry and idle timeout, sign-out, lockout after repeated failures (agreed on by
two apps over one store, as two web processes would), one-time links, and the CSRF token every
change from a browser session must carry."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from legato.clock import ManualClock
from legato.server.app import create_app
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import ONE_TASK, door, make_project

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
TOML = "[auth]\nmax_failures = 3\nidle_minutes = 30\nsession_hours = 8\n"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=BACKENDS)
def make_ws(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: ManualClock,
    store_url_for: Callable[[str], str],
) -> Iterator[Callable[[], Workspace]]:
    """Workspaces over one project on a fresh store of each backend (each test runs twice)."""
    extra = TOML
    if request.param == "postgresql":
        extra += f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
    root = make_project(tmp_path / "proj", ONE_TASK, extra=extra)
    opened: list[Workspace] = []

    def make() -> Workspace:
        ws = Workspace(root, clock=clock)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


@pytest.fixture
def ws(make_ws: Callable[[], Workspace]) -> Workspace:
    w = make_ws()
    door(w).accounts.add_user("ann", "operator", PASSWORD)
    return w


def browser(ws: Workspace) -> TestClient:
    return TestClient(create_app(door(ws), allowed_hosts=["testserver"]))


def sign_in(client: TestClient, name: str = "ann", password: str = PASSWORD) -> Any:
    form = client.get("/signin?next=/runs")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    return client.post(
        "/signin",
        data={"name": name, "password": password, "csrf": csrf.group(1), "next": "/runs"},
        follow_redirects=False,
    )


def page_csrf(client: TestClient) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/runs").text)
    assert found
    return found.group(1)


def test_a_page_sends_an_anonymous_browser_to_sign_in_and_back(ws: Workspace) -> None:
    client = browser(ws)
    r = client.get("/runs?pipeline=etl", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fruns%3Fpipeline%3Detl"
    done = sign_in(client)
    assert done.status_code == 303 and done.headers["location"] == "/runs"
    cookie = done.headers["set-cookie"]
    assert "legato_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; under TLS the cookie is Secure
    page = client.get("/runs")
    assert page.status_code == 200 and "ann" in page.text and "Sign out" in page.text


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(ws: Workspace) -> None:
    client = browser(ws)
    wrong = sign_in(client, password="not the password")
    nobody = sign_in(client, name="zed")
    assert wrong.status_code == nobody.status_code == 401
    assert "wrong name or password" in wrong.text and "wrong name or password" in nobody.text
    assert client.get("/runs", follow_redirects=False).status_code == 303


def test_the_sign_in_form_refuses_a_post_without_its_own_token(ws: Workspace) -> None:
    client = browser(ws)
    r = client.post(
        "/signin", data={"name": "ann", "password": PASSWORD, "csrf": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "legato_session" not in r.headers.get("set-cookie", "")


def test_repeated_failures_lock_the_name_in_every_web_process(
    make_ws: Callable[[], Workspace], ws: Workspace, clock: ManualClock
) -> None:
    one, two = browser(ws), browser(make_ws())  # two apps, one store
    for client in (one, two, one):
        assert sign_in(client, password="guess").status_code == 401
    locked = sign_in(two)  # the right password, but the name is locked now
    assert locked.status_code == 401 and "locked until" in locked.text
    clock.advance(960)
    assert sign_in(two).status_code == 303
    rows = door(ws).audit.entries(action="auth.signin", limit=10)[::-1]
    assert [(r.outcome, r.detail.get("reason")) for r in rows] == [
        ("refused", "wrong password"),
        ("refused", "wrong password"),
        ("refused", "wrong password, now locked"),
        ("refused", "locked"),
        ("ok", None),
    ]


def test_a_session_ends_when_idle_expired_or_signed_out(ws: Workspace, clock: ManualClock) -> None:
    client = browser(ws)
    sign_in(client)
    clock.advance(1740)
    assert client.get("/runs", follow_redirects=False).status_code == 200
    clock.advance(1740)  # seen 29 minutes ago: still within 30
    assert client.get("/runs", follow_redirects=False).status_code == 200
    clock.advance(1860)
    assert client.get("/runs", follow_redirects=False).status_code == 303  # idle too long

    sign_in(client)
    for _ in range(9):  # active all along, but a session lasts 8 hours
        clock.advance(1500)
        client.get("/runs")
    clock.advance(18000)
    assert client.get("/", follow_redirects=False).status_code == 303

    sign_in(client)
    kept = client.cookies.get("legato_session")
    out = client.post("/signout", data={"csrf": page_csrf(client)}, follow_redirects=False)
    assert out.status_code == 303
    # The old cookie, replayed, is refused: the session ended in the store, not only here.
    again = browser(ws)
    again.cookies.set("legato_session", kept or "")
    assert again.get("/runs", follow_redirects=False).status_code == 303


def test_changes_from_a_browser_session_need_its_csrf_token(ws: Workspace) -> None:
    client = browser(ws)
    sign_in(client)
    no_token = client.post("/api/v1/pipelines/etl/runs", json={})
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["error"]
    wrong = client.post("/api/v1/pipelines/etl/runs", json={}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    made = client.post(
        "/api/v1/pipelines/etl/runs", json={}, headers={"X-CSRF-Token": page_csrf(client)}
    )
    assert made.status_code == 201, made.text
    (row,) = door(ws).audit.entries(action="runs.create")
    assert (row.actor, row.auth, row.target) == ("http:ann", "password", "etl")


def test_disabling_a_user_ends_its_sessions_at_once(ws: Workspace) -> None:
    client = browser(ws)
    sign_in(client)
    door(ws).accounts.disable("ann")
    assert client.get("/runs", follow_redirects=False).status_code == 303
    assert sign_in(client).status_code == 401


def test_a_one_time_link_signs_in_once(ws: Workspace, clock: ManualClock) -> None:
    link = door(ws).accounts.sign_in_link("ann")
    first, second = browser(ws), browser(ws)
    r = first.get(f"/signin/link?token={link}", follow_redirects=False)
    assert r.status_code == 303 and "legato_session=" in r.headers["set-cookie"]
    assert first.get("/runs").status_code == 200
    assert second.get(f"/signin/link?token={link}", follow_redirects=False).status_code == 401
    late = door(ws).accounts.sign_in_link("ann")
    clock.advance(960)
    assert second.get(f"/signin/link?token={late}", follow_redirects=False).status_code == 401


def test_a_sign_in_never_redirects_off_site(ws: Workspace) -> None:
    client = browser(ws)
    form = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = client.post(
            "/signin",
            data={"name": "ann", "password": PASSWORD, "csrf": csrf.group(1), "next": target},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/", target
        form = client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf


def test_api_tokens_work_until_revoked_or_expired(ws: Workspace, clock: ManualClock) -> None:
    accounts = door(ws).accounts
    made = accounts.create_token("ci", "viewer", timedelta(days=1))
    client = browser(ws)
    auth = {"Authorization": f"Bearer {made.token}"}
    assert client.get("/api/v1/runs", headers=auth).status_code == 200
    assert accounts.tokens()[0].last_used_at == T0
    clock.advance(86400)
    assert client.get("/api/v1/runs", headers=auth).status_code == 401
    other = accounts.create_token("ci2", "viewer")
    auth = {"Authorization": f"Bearer {other.token}"}
    assert client.get("/api/v1/runs", headers=auth).status_code == 200
    accounts.revoke_token("ci2")
    assert client.get("/api/v1/runs", headers=auth).status_code == 401
    forged = {"Authorization": f"Bearer {other.token[:-4]}AAAA"}
    assert client.get("/api/v1/runs", headers=forged).status_code == 401


def test_a_token_revoked_by_another_process_stops_working_within_a_second(
    make_ws: Callable[[], Workspace], ws: Workspace, clock: ManualClock
) -> None:
    made = door(ws).accounts.create_token("ci", "viewer")
    auth = {"Authorization": f"Bearer {made.token}"}
    client = browser(ws)
    assert client.get("/api/v1/runs", headers=auth).status_code == 200
    door(make_ws()).accounts.revoke_token("ci")  # another web process, say
    # Checked against the store at most once a second per credential, in each process.
    assert client.get("/api/v1/runs", headers=auth).status_code == 200
    clock.advance(1)
    assert client.get("/api/v1/runs", headers=auth).status_code == 401
