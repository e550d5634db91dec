"""OpenID Connect sign-in against a real provider (the npm package oidc-provider under node).

The provider runs from tests/security/oidc_idp (``npm ci`` there, as scripts/test.sh does;
tests/security/oidc_provider.py starts it); without node or its node_modules the tests skip,
or fail when CI=true. The browser is an
httpx client that follows the provider's redirects and fills its sign-in form; the callback to
Legato's redirect_uri is captured, not served.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from legato.clock import ManualClock, system_clock
from legato.security.oidc import Begun, OidcClient, OidcSettings
from legato.security.sso import Identity, SignInRefused, SsoConfigError
from tests.security.oidc_provider import CLIENT_ID, CLIENT_SECRET, oidc_provider
from tests.security.oidc_provider import sign_in_at_provider as walk

BASE_URL = "http://127.0.0.1:8765"  # Legato's public address in these tests; never served
REDIRECT_URI = BASE_URL + "/auth/oidc/callback"
ROLE_MAP = {"legato-admins": "admin", "data-ops": "operator", "analysts": "viewer"}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running oidc-provider that knows Legato's test client."""
    with oidc_provider(tmp_path_factory.mktemp("oidc-provider"), REDIRECT_URI) as url:
        yield url


def settings(issuer: str, **changes: Any) -> OidcSettings:
    table: dict[str, Any] = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": "openid profile email groups",
        "role_map": ROLE_MAP,
        **changes,
    }
    return OidcSettings.from_toml(table, base_url=BASE_URL)


def sign_in_at_provider(url: str, username: str, password: str) -> dict[str, str]:
    """A browser's sign-in at the provider; the query it brings back to Legato's callback."""
    return walk(url, username, password, REDIRECT_URI)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """Legato's own connection to the provider (discovery, keys, tokens, userinfo)."""
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def client(issuer: str, http: httpx.Client) -> OidcClient:
    return OidcClient(settings(issuer), http=http)


def sign_in(client: OidcClient, user: str) -> Identity:
    """The whole sign-in of ``user`` (password ``USER-password``), begin to finish."""
    begun = client.begin()
    return client.finish(begun, sign_in_at_provider(begun.url, user, f"{user}-password"))


def test_an_admin_signs_in_with_the_role_their_group_maps_to(client: OidcClient) -> None:
    begun = client.begin()
    query = sign_in_at_provider(begun.url, "ada", "ada-password")

    identity = client.finish(begun, query)

    assert identity.username == "ada"
    assert identity.subject == "ada"
    assert identity.email == "ada@example.test"
    assert identity.groups == ("legato-admins", "engineering")
    assert identity.role == "admin"
    assert identity.provider == "oidc"


def test_the_authorization_request_uses_pkce_s256_state_and_nonce(client: OidcClient) -> None:
    begun = client.begin()
    params = dict(parse_qsl(urlsplit(begun.url).query))

    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] and params["code_challenge"] != begun.code_verifier
    assert params["state"] == begun.state
    assert params["nonce"] == begun.nonce
    assert params["redirect_uri"] == REDIRECT_URI
    assert begun.state != client.begin().state


def test_the_highest_mapped_role_wins(client: OidcClient) -> None:
    identity = sign_in(client, "otto")  # in data-ops (operator) and analysts (viewer)
    assert (identity.username, identity.role) == ("otto", "operator")


def test_a_user_whose_groups_map_to_nothing_is_refused(client: OidcClient) -> None:
    with pytest.raises(SignInRefused, match="no group of 'nora' maps to a Legato role"):
        sign_in(client, "nora")


def test_a_default_role_admits_a_user_without_mapped_groups(
    issuer: str, http: httpx.Client
) -> None:
    identity = sign_in(OidcClient(settings(issuer, default_role="viewer"), http=http), "nora")
    assert (identity.username, identity.role) == ("nora", "viewer")


def test_a_callback_with_another_state_is_refused(client: OidcClient) -> None:
    begun = client.begin()
    query = sign_in_at_provider(begun.url, "ada", "ada-password")

    with pytest.raises(SignInRefused, match="state does not match"):
        client.finish(begun, {**query, "state": client.begin().state})
    with pytest.raises(SignInRefused, match="state does not match"):
        client.finish(begun, {k: v for k, v in query.items() if k != "state"})


def test_a_callback_naming_another_issuer_is_refused(client: OidcClient) -> None:
    begun = client.begin()
    query = sign_in_at_provider(begun.url, "ada", "ada-password")
    assert query["iss"] == client.settings.issuer

    with pytest.raises(SignInRefused, match="does not come from the configured issuer"):
        client.finish(begun, {**query, "iss": "https://elsewhere.example.test"})
    with pytest.raises(SignInRefused, match="does not come from the configured issuer"):
        client.finish(begun, {k: v for k, v in query.items() if k != "iss"})
    assert client.finish(begun, query).username == "ada"  # the code was not spent


def test_a_replayed_code_is_refused(client: OidcClient) -> None:
    begun = client.begin()
    query = sign_in_at_provider(begun.url, "ada", "ada-password")
    assert client.finish(begun, query).role == "admin"

    with pytest.raises(SignInRefused, match="did not redeem the code: invalid_grant"):
        client.finish(begun, query)


def test_a_code_redeemed_without_its_pkce_verifier_is_refused(client: OidcClient) -> None:
    begun = client.begin()
    query = sign_in_at_provider(begun.url, "ada", "ada-password")
    other = dataclasses.replace(begun, code_verifier=client.begin().code_verifier)

    with pytest.raises(SignInRefused, match="did not redeem the code: invalid_grant"):
        client.finish(other, query)


def test_an_id_token_for_another_sign_in_is_refused(client: OidcClient) -> None:
    begun = client.begin()
    query = sign_in_at_provider(begun.url, "ada", "ada-password")
    other: Begun = dataclasses.replace(begun, nonce=client.begin().nonce)

    with pytest.raises(SignInRefused, match=r"ID token is invalid \(invalid_claim\)"):
        client.finish(other, query)


class _AlterIdToken(httpx.HTTPTransport):
    """Someone between Legato and the provider who rewrites the ID token's subject."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != "/token" or response.status_code != 200:
            return response
        body = json.loads(response.read())
        header, payload, signature = body["id_token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = "otto"
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        body["id_token"] = f"{header}.{payload}.{signature}"
        return httpx.Response(200, json=body)


def test_an_id_token_altered_on_its_way_is_refused(issuer: str) -> None:
    with httpx.Client(timeout=10.0, transport=_AlterIdToken()) as tampered:
        client = OidcClient(settings(issuer), http=tampered)
        with pytest.raises(SignInRefused, match=r"ID token is invalid \(bad_signature\)"):
            sign_in(client, "ada")


def test_an_expired_id_token_is_refused(issuer: str, http: httpx.Client) -> None:
    later = ManualClock(system_clock() + timedelta(hours=3))
    client = OidcClient(settings(issuer), http=http, clock=later)
    with pytest.raises(SignInRefused, match=r"ID token is invalid \(expired_token\)"):
        sign_in(client, "ada")


def test_a_wrong_client_secret_is_refused_by_the_provider(issuer: str, http: httpx.Client) -> None:
    client = OidcClient(settings(issuer, client_secret="not-the-secret"), http=http)
    with pytest.raises(SignInRefused, match="did not redeem the code: invalid_client"):
        sign_in(client, "ada")


def test_an_error_from_the_provider_is_refused(client: OidcClient) -> None:
    begun = client.begin()
    callback = {"state": begun.state, "error": "access_denied", "error_description": "no"}

    with pytest.raises(SignInRefused, match="the identity provider refused: access_denied"):
        client.finish(begun, callback)


def test_a_provider_naming_another_issuer_is_refused(issuer: str, http: httpx.Client) -> None:
    client = OidcClient(settings(issuer + "/"), http=http)
    with pytest.raises(SignInRefused, match="discovery document names issuer"):
        client.begin()


def test_an_unreachable_provider_is_refused() -> None:
    with httpx.Client(timeout=2.0) as http:
        client = OidcClient(settings("http://127.0.0.1:9"), http=http)
        with pytest.raises(SignInRefused, match="cannot fetch the provider's discovery document"):
            client.begin()


# -- the [auth.oidc] table -------------------------------------------------------------------


def test_settings_default_the_callback_scopes_and_claims() -> None:
    s = OidcSettings.from_toml(
        {
            "issuer": "https://id.example.com",
            "client_id": "legato",
            "client_secret": "secret:oidc_client",
            "role_map": {"ops": "operator"},
        },
        base_url="https://legato.example.com/",
    )
    assert s.redirect_uri == "https://legato.example.com/auth/oidc/callback"
    assert s.scopes == "openid profile email"
    assert (s.group_claim, s.username_claim) == ("groups", "preferred_username")
    assert s.client_secret == "secret:oidc_client"
    assert dict(s.role_map) == {"ops": "operator"}
    assert s.default_role is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"client_id": "x", "role_map": {"a": "admin"}}, r"needs issuer"),
        ({"issuer": "https://i", "role_map": {"a": "admin"}}, r"needs client_id"),
        ({"issuer": "http://id.example.com", "client_id": "x"}, r"issuer must be an https://"),
        ({"issuer": "https://i", "client_id": "x"}, r"maps no group to a role"),
        ({"issuer": "https://i", "client_id": "x", "role_map": ["admin"]}, r"role_map must be"),
        (
            {"issuer": "https://i", "client_id": "x", "default_role": "viewer", "scope": "a"},
            r"unknown key\(s\) scope",
        ),
        (
            {"issuer": "https://i", "client_id": "x", "default_role": "viewer", "scopes": "email"},
            r'scopes must include "openid"',
        ),
    ],
)
def test_settings_refuse_an_unusable_table(table: dict[str, Any], message: str) -> None:
    with pytest.raises(SsoConfigError, match=message):
        OidcSettings.from_toml(table, base_url="https://legato.example.com")
