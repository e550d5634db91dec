"""SAML 2.0 sign-in against a real identity provider (pysaml2's IdP side, tests/security/saml_idp).

The browser is an httpx client: it follows the redirect to the provider, fills its sign-in
form and takes the self-posting form the provider answers with; its SAMLResponse is what the
browser would post to Legato's assertion consumer service.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from legato.security.saml import SamlClient, SamlSettings
from legato.security.sso import Identity, SignInRefused, SsoConfigError
from tests.security.saml_idp import HtmlForm, SamlIdp, make_key_and_cert

BASE_URL = "http://127.0.0.1:8765"  # Legato's public address in these tests; never served
ROLE_MAP = {"legato-admins": "admin", "data-ops": "operator", "analysts": "viewer"}


@pytest.fixture(scope="module", autouse=True)
def _xmlsec() -> None:
    if shutil.which("xmlsec1") is None:
        reason = "xmlsec1 is not installed (Debian package xmlsec1; scripts/test.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlIdp]:
    provider = SamlIdp(tmp_path_factory.mktemp("saml-idp"))
    yield provider
    provider.stop()


def make_client(idp: SamlIdp, **changes: Any) -> SamlClient:
    table = {"idp_metadata": str(idp.metadata_path), "role_map": ROLE_MAP, **changes}
    client = SamlClient(SamlSettings.from_toml(table, base_url=BASE_URL))
    idp.trust(client.metadata())
    return client


@pytest.fixture
def client(idp: SamlIdp) -> SamlClient:
    return make_client(idp)


def sign_in(client: SamlClient, user: str) -> Identity:
    """The whole sign-in of ``user`` (password ``USER-password``), begin to finish."""
    url, request_id = client.begin()
    return client.finish(sign_in_at_idp(url, user, f"{user}-password")["SAMLResponse"], request_id)


def sign_in_at_idp(url: str, username: str, password: str) -> dict[str, str]:
    """What a browser does: go to ``url``, sign in, and take the form the provider answers
    with. Returns that form's fields (SAMLResponse, RelayState) after checking it posts to
    Legato's assertion consumer service."""
    with httpx.Client(timeout=10.0) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        login = HtmlForm(page.text, str(page.url))
        answer = browser.post(
            login.action or "", data={**login.fields, "username": username, "password": password}
        )
        assert answer.status_code == 200, answer.text
    post = HtmlForm(answer.text, str(answer.url))
    assert post.action == BASE_URL + "/auth/saml/acs"
    return post.fields


def test_an_admin_signs_in_with_the_role_their_group_maps_to(client: SamlClient) -> None:
    url, request_id = client.begin(relay_state="/runs")
    form = sign_in_at_idp(url, "ada", "ada-password")
    assert form["RelayState"] == "/runs"

    identity = client.finish(form["SAMLResponse"], request_id)

    assert identity.username == "ada"
    assert identity.email == "ada@example.test"
    assert identity.groups == ("legato-admins", "engineering")
    assert identity.role == "admin"
    assert identity.provider == "saml"
    assert identity.subject  # the persistent NameID


def test_the_highest_mapped_role_wins(client: SamlClient) -> None:
    identity = sign_in(client, "otto")  # in data-ops (operator) and analysts (viewer)
    assert (identity.username, identity.role) == ("otto", "operator")


def test_a_user_whose_groups_map_to_nothing_is_refused(client: SamlClient) -> None:
    with pytest.raises(SignInRefused, match="no group of 'nora' maps to a Legato role"):
        sign_in(client, "nora")


def test_a_default_role_admits_a_user_without_mapped_groups(idp: SamlIdp) -> None:
    identity = sign_in(make_client(idp, default_role="viewer"), "nora")
    assert (identity.username, identity.role) == ("nora", "viewer")


def test_a_tampered_response_is_refused(client: SamlClient) -> None:
    url, request_id = client.begin()
    form = sign_in_at_idp(url, "nora", "nora-password")
    xml = base64.b64decode(form["SAMLResponse"]).decode()
    assert xml.count(">marketing<") == 1
    forged = base64.b64encode(xml.replace(">marketing<", ">legato-admins<").encode()).decode()

    with pytest.raises(SignInRefused, match=r"not accepted \(SignatureError\)"):
        client.finish(forged, request_id)


def test_a_response_to_another_request_is_refused(client: SamlClient) -> None:
    url, _ = client.begin()
    _, other_request_id = client.begin()
    form = sign_in_at_idp(url, "ada", "ada-password")

    with pytest.raises(SignInRefused, match=r"not accepted \(UnsolicitedResponse\)"):
        client.finish(form["SAMLResponse"], other_request_id)


def test_a_response_for_another_service_provider_is_refused(
    idp: SamlIdp, client: SamlClient
) -> None:
    other_sp = make_client(idp, sp_entity_id="https://other.example.test/saml")
    url, request_id = other_sp.begin()
    form = sign_in_at_idp(url, "ada", "ada-password")
    assert other_sp.finish(form["SAMLResponse"], request_id).role == "admin"

    with pytest.raises(SignInRefused, match="not accepted"):
        client.finish(form["SAMLResponse"], request_id)


def test_a_response_from_another_provider_is_refused(idp: SamlIdp, tmp_path: Path) -> None:
    stranger = SamlIdp(tmp_path)  # same code, its own key and entity id
    try:
        ours = make_client(idp)
        theirs = make_client(stranger)
        url, request_id = theirs.begin()
        form = sign_in_at_idp(url, "ada", "ada-password")
        with pytest.raises(SignInRefused, match="not accepted"):
            ours.finish(form["SAMLResponse"], request_id)
    finally:
        stranger.stop()


def test_an_expired_assertion_is_refused(tmp_path: Path) -> None:
    stale = SamlIdp(tmp_path, lifetime_minutes=-10)
    try:
        client = make_client(stale)
        url, request_id = client.begin()
        form = sign_in_at_idp(url, "ada", "ada-password")
        with pytest.raises(SignInRefused, match=r"not accepted \(VerificationError\)"):
            client.finish(form["SAMLResponse"], request_id)
    finally:
        stale.stop()


def test_garbage_is_refused(client: SamlClient) -> None:
    _, request_id = client.begin()
    with pytest.raises(SignInRefused):
        client.finish(base64.b64encode(b"<not-saml/>").decode(), request_id)
    with pytest.raises(SignInRefused, match="empty"):
        client.finish("", request_id)


def test_with_a_key_pair_requests_are_signed_and_the_metadata_shows_the_certificate(
    tmp_path: Path,
) -> None:
    strict = SamlIdp(tmp_path, want_signed_requests=True)
    try:
        key, cert = make_key_and_cert(tmp_path, "sp")
        client = make_client(strict, sp_key=str(key), sp_cert=str(cert))
        metadata = client.metadata()
        assert 'AuthnRequestsSigned="true"' in metadata
        pem_body = "".join(cert.read_text().splitlines()[1:-1])
        assert pem_body in "".join(metadata.split())

        # The provider checks the request's signature against the certificate above.
        url, _ = client.begin()
        query = dict(parse_qsl(urlsplit(url).query))
        query["Signature"] = base64.b64encode(b"\0" * 256).decode()
        forged = httpx.get(urlsplit(url)._replace(query=urlencode(query)).geturl(), timeout=10.0)
        assert forged.status_code == 400, forged.text
        assert sign_in(client, "ada").role == "admin"
    finally:
        strict.stop()


def test_with_a_key_pair_encrypted_assertions_are_read(tmp_path: Path) -> None:
    secretive = SamlIdp(tmp_path, encrypt_assertions=True)
    try:
        key, cert = make_key_and_cert(tmp_path, "sp")
        client = make_client(secretive, sp_key=str(key), sp_cert=str(cert))
        url, request_id = client.begin()
        form = sign_in_at_idp(url, "otto", "otto-password")
        xml = base64.b64decode(form["SAMLResponse"]).decode()
        assert "EncryptedAssertion" in xml
        assert "data-ops" not in xml

        identity = client.finish(form["SAMLResponse"], request_id)
        assert (identity.username, identity.role) == ("otto", "operator")
        with pytest.raises(SignInRefused, match="no usable assertion"):  # no key: unreadable
            make_client(secretive).finish(form["SAMLResponse"], request_id)
    finally:
        secretive.stop()


def test_metadata_names_the_acs_and_entity_id(client: SamlClient) -> None:
    metadata = client.metadata()
    assert 'entityID="http://127.0.0.1:8765/auth/saml/metadata"' in metadata
    assert 'Location="http://127.0.0.1:8765/auth/saml/acs"' in metadata


# -- the [auth.saml] table -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"role_map": {"a": "admin"}}, r"needs idp_metadata"),
        ({"idp_metadata": "/nonexistent.xml", "role_map": {"a": "admin"}}, r"no file"),
        ({"idp_metadata": "http://idp/metadata", "role_map": {"a": "admin"}}, r"https:// URL"),
        (
            {"idp_metadata": "https://idp/md", "default_role": "viewer", "sp_key": "{tmp}/sp.key"},
            r"sp_key and sp_cert go together",
        ),
        ({"idp_metadata": "https://idp/md"}, r"maps no group to a role"),
        (
            {"idp_metadata": "https://idp/md", "default_role": "viewer", "group_attr": "x"},
            r"unknown key\(s\) group_attr",
        ),
    ],
)
def test_settings_refuse_an_unusable_table(
    table: dict[str, Any], message: str, tmp_path: Path
) -> None:
    make_key_and_cert(tmp_path, "sp")
    table = {
        k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v for k, v in table.items()
    }
    with pytest.raises(SsoConfigError, match=message):
        SamlSettings.from_toml(table, base_url=BASE_URL)


def test_metadata_that_names_no_identity_provider_is_refused(
    tmp_path: Path, client: SamlClient
) -> None:
    sp_only = tmp_path / "sp.xml"
    sp_only.write_text(client.metadata())
    settings = SamlSettings.from_toml(
        {"idp_metadata": str(sp_only), "default_role": "viewer"}, base_url=BASE_URL
    )
    with pytest.raises(SsoConfigError, match="describes 0 identity providers"):
        SamlClient(settings)
