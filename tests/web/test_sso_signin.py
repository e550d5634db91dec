"""Single sign-on through the real app: the sign-in page's buttons, OpenID Connect and SAML
sign-ins against real providers on 127.0.0.1 (oidc-provider under node; pysaml2's IdP), the
session they open and what its role allows, refusals shown on the sign-in page and kept in
the audit trail, and replays refused.

The app is served by TestClient at ``[web] public_url`` (the address the providers know);
the browser's steps at the providers are httpx clients, as in tests/security.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from legato.clock import ManualClock
from legato.server.app import create_app
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import ONE_TASK, door, make_project
from tests.security.oidc_provider import CLIENT_SECRET, oidc_provider, sign_in_at_provider
from tests.security.oidc_provider import unavailable as _unavailable
from tests.security.saml_idp import HtmlForm, SamlIdp

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

PUBLIC_URL = "http://127.0.0.1:8765"  # served by TestClient only: never bound
CALLBACK = PUBLIC_URL + "/auth/oidc/callback"
ACS = PUBLIC_URL + "/auth/saml/acs"
SECRET_VARIABLE = "LEGATO_TEST_OIDC_SECRET"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with oidc_provider(tmp_path_factory.mktemp("oidc-provider"), CALLBACK) as url:
        yield url


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlIdp]:
    if shutil.which("xmlsec1") is None:
        _unavailable("xmlsec1 is not installed (Debian package xmlsec1; scripts/test.sh does)")
    provider = SamlIdp(tmp_path_factory.mktemp("saml-idp"))
    yield provider
    provider.stop()


def settings_toml(issuer: str, idp: SamlIdp, store_url: str) -> str:
    return f"""
[store]
url = "{store_url}"

[web]
public_url = "{PUBLIC_URL}"

[auth.oidc]
issuer = "{issuer}"
client_id = "legato-test"
client_secret = "${{env:{SECRET_VARIABLE}}}"
scopes = "openid profile email groups"
label = "Sign in with Test ID"

[auth.oidc.role_map]
"data-ops" = "operator"
"analysts" = "viewer"

[auth.saml]
idp_metadata = "{idp.metadata_path}"
label = "Sign in with Test SAML"

[auth.saml.role_map]
"engineering" = "viewer"
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    issuer: str,
    idp: SamlIdp,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    store_url_for: Callable[[str], str],
) -> Iterator[Workspace]:
    """The project, its store on each backend (several web processes share sign-ins under
    way through it)."""
    monkeypatch.setenv(SECRET_VARIABLE, CLIENT_SECRET)
    toml = settings_toml(issuer, idp, store_url_for(request.param))
    root = make_project(tmp_path / "proj", ONE_TASK, extra=toml)
    workspace = Workspace(root, clock=clock)
    yield workspace
    workspace.close()


@pytest.fixture
def app(ws: Workspace, idp: SamlIdp) -> Any:
    made = create_app(door(ws))
    # The identity provider's administrator imports Legato's metadata, served by Legato.
    with TestClient(made, base_url=PUBLIC_URL) as anyone:
        metadata = anyone.get("/auth/saml/metadata")
    assert metadata.status_code == 200, metadata.text
    assert f'entityID="{PUBLIC_URL}/auth/saml/metadata"' in metadata.text
    assert f'Location="{ACS}"' in metadata.text
    idp.trust(metadata.text)
    return made


def browser(app: Any) -> TestClient:
    return TestClient(app, base_url=PUBLIC_URL)


def oidc_sign_in(client: TestClient, user: str, next_: str = "/runs") -> dict[str, str]:
    """The browser's way out to the OIDC provider and its sign-in there; the callback's query."""
    out = client.get("/auth/oidc/login", params={"next": next_}, follow_redirects=False)
    assert out.status_code == 303, out.text
    assert "legato_sso=" in out.headers["set-cookie"]
    return sign_in_at_provider(out.headers["location"], user, f"{user}-password", CALLBACK)


def saml_sign_in(client: TestClient, user: str, next_: str = "/runs") -> dict[str, str]:
    """The browser's way out to the SAML identity provider, its sign-in there and the form
    the provider answers with (posting to Legato's assertion consumer service)."""
    out = client.get("/auth/saml/login", params={"next": next_}, follow_redirects=False)
    assert out.status_code == 303, out.text
    with httpx.Client(timeout=10.0) as at_idp:
        page = at_idp.get(out.headers["location"])
        login = HtmlForm(page.text, str(page.url))
        fields = {**login.fields, "username": user, "password": f"{user}-password"}
        answer = at_idp.post(login.action or "", data=fields)
    assert answer.status_code == 200, answer.text
    form = HtmlForm(answer.text, str(answer.url))
    assert form.action == ACS
    return form.fields


def post_to_acs(client: TestClient, fields: dict[str, str], idp: SamlIdp) -> Any:
    # From the provider's page: another site's Origin, and no session cookie or CSRF token.
    return client.post(
        "/auth/saml/acs", data=fields, headers={"Origin": idp.url}, follow_redirects=False
    )


def page_csrf(client: TestClient) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/runs").text)
    assert found
    return found.group(1)


def refusal(page: Any) -> str:
    found = re.search(r'<p class="error-text" role="alert">([^<]*)</p>', page.text)
    assert found, page.text
    return found.group(1)


def signins(ws: Workspace) -> list[tuple[str, str, str, str | None]]:
    rows = door(ws).audit.entries(action="auth.signin", limit=50)[::-1]
    return [(r.actor, r.auth, r.outcome, r.detail.get("reason")) for r in rows]


def test_the_sign_in_page_offers_each_configured_provider(app: Any) -> None:
    page = browser(app).get("/signin", params={"next": "/runs?state=failed"})
    assert page.status_code == 200
    links = dict(re.findall(r'<a class="button" href="([^"]+)">([^<]+)</a>', page.text))
    assert links == {
        "/auth/oidc/login?next=%2Fruns%3Fstate%3Dfailed": "Sign in with Test ID",
        "/auth/saml/login?next=%2Fruns%3Fstate%3Dfailed": "Sign in with Test SAML",
    }


def test_an_oidc_operator_signs_in_and_may_launch_a_run(app: Any, ws: Workspace) -> None:
    client = browser(app)
    query = oidc_sign_in(client, "otto")  # in data-ops (operator) and analysts (viewer)

    back = client.get("/auth/oidc/callback", params=query, follow_redirects=False)

    assert back.status_code == 303 and back.headers["location"] == "/runs"
    assert "legato_session=" in back.headers["set-cookie"]
    page = client.get("/runs")
    assert page.status_code == 200 and "otto" in page.text
    launched = client.post(
        "/api/v1/pipelines/etl/runs", json={}, headers={"X-CSRF-Token": page_csrf(client)}
    )
    assert launched.status_code == 201, launched.text
    assert client.get("/api/v1/audit").status_code == 403  # an admin's read
    user = door(ws).accounts.users()
    assert [(u.name, u.role, u.source) for u in user] == [("otto", "operator", "oidc")]
    assert signins(ws) == [("user:otto", "oidc", "ok", None)]


def test_a_saml_viewer_signs_in_and_is_refused_a_launch(
    app: Any, ws: Workspace, idp: SamlIdp
) -> None:
    client = browser(app)
    fields = saml_sign_in(client, "ada")  # in engineering (viewer) only, as mapped here

    checked = post_to_acs(client, fields, idp)
    assert checked.status_code == 303 and checked.headers["location"].startswith(
        "/auth/saml/done?key="
    )
    done = client.get(checked.headers["location"], follow_redirects=False)

    assert done.status_code == 303 and done.headers["location"] == "/runs"
    page = client.get("/runs")
    assert page.status_code == 200 and "ada" in page.text
    refused = client.post(
        "/api/v1/pipelines/etl/runs", json={}, headers={"X-CSRF-Token": page_csrf(client)}
    )
    assert refused.status_code == 403, refused.text
    assert signins(ws) == [("user:ada", "saml", "ok", None)]


def test_a_replayed_oidc_callback_is_refused(app: Any, ws: Workspace) -> None:
    client = browser(app)
    query = oidc_sign_in(client, "otto")
    assert client.get("/auth/oidc/callback", params=query, follow_redirects=False).is_redirect

    again = browser(app)  # even from another browser, or the same one: the state is spent
    for replayer in (client, again):
        r = replayer.get("/auth/oidc/callback", params=query, follow_redirects=False)
        assert r.status_code == 401
        assert refusal(r) == "this sign-in is unknown, was used already or took too long"
    assert signins(ws)[1:] == [
        ("oidc", "oidc", "refused", "this sign-in is unknown, was used already or took too long")
    ] * 2


def test_a_replayed_saml_response_is_refused(app: Any, ws: Workspace, idp: SamlIdp) -> None:
    client = browser(app)
    fields = saml_sign_in(client, "ada")
    checked = post_to_acs(client, fields, idp)
    assert client.get(checked.headers["location"], follow_redirects=False).is_redirect

    replayed = post_to_acs(client, fields, idp)
    reused = client.get(checked.headers["location"], follow_redirects=False)

    assert replayed.status_code == reused.status_code == 401
    assert refusal(replayed) == refusal(reused) == (
        "this sign-in is unknown, was used already or took too long"
    )
    assert [row[2] for row in signins(ws)] == ["ok", "refused", "refused"]


def test_a_user_whose_groups_map_to_nothing_is_refused_with_the_reason(
    app: Any, ws: Workspace, idp: SamlIdp
) -> None:
    client = browser(app)
    r = client.get("/auth/oidc/callback", params=oidc_sign_in(client, "nora"))
    assert r.status_code == 401
    assert refusal(r) == "no group of &#39;nora&#39; maps to a Legato role"
    saml = post_to_acs(client, saml_sign_in(client, "otto"), idp)  # data-ops: not mapped here
    assert saml.status_code == 401
    assert refusal(saml) == "no group of &#39;otto&#39; maps to a Legato role"

    assert client.get("/runs", follow_redirects=False).status_code == 303  # not signed in
    assert door(ws).accounts.users() == []
    assert signins(ws) == [
        ("oidc", "oidc", "refused", "no group of 'nora' maps to a Legato role"),
        ("saml", "saml", "refused", "no group of 'otto' maps to a Legato role"),
    ]


def test_a_sign_in_cannot_be_finished_in_another_browser(
    app: Any, ws: Workspace, idp: SamlIdp
) -> None:
    # Someone begins a sign-in as themselves and sends their callback link to a victim.
    mine = browser(app)
    query = oidc_sign_in(mine, "otto")
    fields = saml_sign_in(mine, "ada")
    victim = browser(app)

    r = victim.get("/auth/oidc/callback", params=query, follow_redirects=False)
    assert r.status_code == 401 and refusal(r) == "this sign-in was begun in another browser"
    checked = post_to_acs(victim, fields, idp)  # the provider's form, posted by the victim
    done = victim.get(checked.headers["location"], follow_redirects=False)
    assert done.status_code == 401
    assert refusal(done) == "this sign-in was begun in another browser"
    assert "legato_session" not in victim.cookies
    assert [row[2:] for row in signins(ws)] == [
        ("refused", "this sign-in was begun in another browser")
    ] * 2


def test_a_sign_in_left_at_the_provider_too_long_is_refused(
    app: Any, ws: Workspace, clock: ManualClock
) -> None:
    client = browser(app)
    query = oidc_sign_in(client, "otto")
    clock.advance(11 * 60)

    r = client.get("/auth/oidc/callback", params=query, follow_redirects=False)

    assert r.status_code == 401 and "took too long" in refusal(r)


def test_a_provider_that_cannot_be_reached_is_a_refusal_on_the_sign_in_page(
    tmp_path: Path, ws: Workspace
) -> None:
    toml = (
        f'\n[web]\npublic_url = "{PUBLIC_URL}"\n[auth.oidc]\nissuer = "http://127.0.0.1:9"\n'
        'client_id = "legato"\ndefault_role = "viewer"\n'
    )
    other = Workspace(make_project(tmp_path / "other", ONE_TASK, extra=toml), clock=ws.clock)
    try:
        client = browser(create_app(door(other)))
        r = client.get("/auth/oidc/login", params={"next": "/runs"}, follow_redirects=False)
        assert r.status_code == 502
        assert refusal(r).startswith("cannot fetch the provider&#39;s discovery document")
        assert signins(other)[0][:3] == ("oidc", "oidc", "refused")
    finally:
        other.close()


def test_the_callback_addresses_follow_the_public_url(app: Any, issuer: str) -> None:
    out = browser(app).get("/auth/oidc/login", follow_redirects=False)
    params = dict(parse_qsl(urlsplit(out.headers["location"]).query))
    assert out.headers["location"].startswith(issuer)
    assert params["redirect_uri"] == CALLBACK


def test_an_identity_provider_never_takes_over_a_local_account(app: Any, ws: Workspace) -> None:
    door(ws).accounts.add_user("otto", "viewer", "a local password")
    client = browser(app)

    r = client.get("/auth/oidc/callback", params=oidc_sign_in(client, "otto"))

    assert r.status_code == 401
    assert refusal(r) == (
        "&#39;otto&#39; is the name of another account: a sign-in with OIDC cannot take it over"
    )
    assert door(ws).accounts.user("otto").role == "viewer"  # untouched
    assert signins(ws)[-1][2] == "refused"


def test_a_disabled_single_sign_on_user_is_refused_whatever_the_provider_says(
    app: Any, ws: Workspace
) -> None:
    first = browser(app)
    assert first.get("/auth/oidc/callback", params=oidc_sign_in(first, "otto")).status_code == 200
    door(ws).accounts.disable("otto")
    assert first.get("/runs", follow_redirects=False).status_code == 303  # its session ended

    again = browser(app)
    r = again.get("/auth/oidc/callback", params=oidc_sign_in(again, "otto"))

    assert r.status_code == 401 and refusal(r) == "this account is disabled"
    assert signins(ws)[-1] == ("user:otto", "oidc", "refused", "disabled")


def test_next_leads_back_into_this_site_only(app: Any) -> None:
    client = browser(app)
    query = oidc_sign_in(client, "otto", next_="https://attacker.example/")
    back = client.get("/auth/oidc/callback", params=query, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/"
