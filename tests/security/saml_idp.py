"""A SAML 2.0 identity provider on 127.0.0.1 for Legato's sign-in tests.

pysaml2's IdP side (``saml2.server.Server``) behind a small WSGI app in a thread: it takes an
AuthnRequest by the HTTP-Redirect binding, shows a sign-in form (user name and password), and
answers with a signed Response by the HTTP-POST binding (a self-posting HTML form, as a real
provider sends the browser). Its key and certificate are made with ``cryptography`` in the
folder it is given.
"""

from __future__ import annotations

import datetime
import html
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT
from saml2.server import Server

ACCOUNTS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "ada": (
        "ada-password",
        {"uid": ["ada"], "mail": ["ada@example.test"], "groups": ["legato-admins", "engineering"]},
    ),
    "otto": (
        "otto-password",
        {"uid": ["otto"], "mail": ["otto@example.test"], "groups": ["data-ops", "analysts"]},
    ),
    "nora": (
        "nora-password",
        {"uid": ["nora"], "mail": ["nora@example.test"], "groups": ["marketing"]},
    ),
}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def make_key_and_cert(folder: Path, name: str) -> tuple[Path, Path]:
    """A 2048-bit RSA key and a self-signed certificate for ``name``, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class SamlIdp:
    """A running identity provider; ``metadata_path`` is its metadata for the SP to load.

    ``trust(sp_metadata)`` registers a service provider. ``lifetime_minutes`` is how long an
    assertion is valid (negative: already expired when issued); ``want_signed_requests``
    refuses AuthnRequests without a valid signature; ``encrypt_assertions`` encrypts them for
    the service provider's certificate in its metadata.
    """

    def __init__(
        self,
        folder: Path,
        *,
        lifetime_minutes: int = 5,
        want_signed_requests: bool = False,
        encrypt_assertions: bool = False,
    ) -> None:
        self._encrypt = encrypt_assertions
        self._pending: dict[str, tuple[Any, str]] = {}
        self._httpd: WSGIServer = make_server(
            "127.0.0.1", 0, self._app, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self.entity_id = self.url + "/idp/metadata"
        key, cert = make_key_and_cert(folder, "idp")
        config: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": str(key),
            "cert_file": str(cert),
            "metadata": {"inline": []},  # service providers come later, by trust()
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (self.url + "/sso/redirect", BINDING_HTTP_REDIRECT)
                        ]
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "want_authn_requests_signed": want_signed_requests,
                    "policy": {
                        "default": {
                            "name_form": NAME_FORMAT_BASIC,
                            "lifetime": {"minutes": lifetime_minutes},
                        }
                    },
                }
            },
        }
        idp_config = IdPConfig().load(config)
        self.metadata_path = folder / "idp-metadata.xml"
        self.metadata_path.write_bytes(create_metadata_string(None, config=idp_config))
        self.server = Server(config=idp_config)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def trust(self, sp_metadata: str) -> None:
        """Accept requests from (and answer to) the service provider ``sp_metadata`` names."""
        self.server.metadata.load("inline", sp_metadata)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    # -- the web app ------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if environ["REQUEST_METHOD"] == "GET" and path == "/sso/redirect":
            return self._sso(parse_qs(environ.get("QUERY_STRING", "")), start_response)
        if environ["REQUEST_METHOD"] == "POST" and path == "/sso/login":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qs(environ["wsgi.input"].read(size).decode())
            return self._login(form, start_response)
        return _page(start_response, "404 Not Found", "<p>not found</p>")

    def _sso(self, query: dict[str, list[str]], start_response: StartResponse) -> Iterable[bytes]:
        try:
            request = self.server.parse_authn_request(
                query["SAMLRequest"][0],
                BINDING_HTTP_REDIRECT,
                relay_state=query.get("RelayState", [None])[0],
                sigalg=query.get("SigAlg", [None])[0],
                signature=query.get("Signature", [None])[0],
            )
        except Exception as exc:
            return _page(start_response, "400 Bad Request", f"<p>bad request: {exc!r}</p>")
        ticket = secrets.token_urlsafe(16)
        self._pending[ticket] = (request.message, query.get("RelayState", [""])[0])
        return _page(start_response, "200 OK", _login_form(ticket, ""))

    def _login(self, form: dict[str, list[str]], start_response: StartResponse) -> Iterable[bytes]:
        ticket = form.get("ticket", [""])[0]
        if ticket not in self._pending:
            return _page(start_response, "400 Bad Request", "<p>no sign-in under way</p>")
        name, password = form.get("username", [""])[0], form.get("password", [""])[0]
        account = ACCOUNTS.get(name)
        if account is None or not secrets.compare_digest(account[0], password):
            return _page(
                start_response,
                "401 Unauthorized",
                _login_form(ticket, "Wrong user name or password."),
            )
        message, relay_state = self._pending.pop(ticket)
        args = self.server.response_args(message)
        response = self.server.create_authn_response(
            dict(account[1]),
            userid=name,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=True,
            sign_assertion=True,
            encrypt_assertion=self._encrypt,
            **args,
        )
        post = self.server.apply_binding(
            BINDING_HTTP_POST, str(response), args["destination"], relay_state, response=True
        )
        return _page(start_response, "200 OK", post["data"])


def _login_form(ticket: str, message: str) -> str:
    error = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return (
        f"<h1>Sign in</h1>{error}"
        '<form method="post" action="/sso/login">'
        f'<input type="hidden" name="ticket" value="{html.escape(ticket)}">'
        '<input name="username"><input name="password" type="password">'
        '<button type="submit">Sign in</button></form>'
    )


def _page(start_response: StartResponse, status: str, body: str) -> Iterable[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/html; charset=utf-8")])
    return [data]


class HtmlForm(HTMLParser):
    """The first form of an HTML page: where it posts and its fields (what a browser sends)."""

    def __init__(self, page: str, base_url: str) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.feed(page)
        assert self.action is not None, f"no form in {page!r}"
        self.action = urljoin(base_url, self.action)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = found.get("action", "")
        elif tag == "input" and "name" in found:
            self.fields[found["name"]] = found.get("value", "")
