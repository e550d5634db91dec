"""Sign-in with OpenID Connect: the authorization code flow with PKCE, as a relying party.

``OidcClient.begin`` gives the URL to send the browser to and the ``Begun`` values the web
layer keeps server side (never in the browser); the provider sends the browser back to
``redirect_uri`` and ``OidcClient.finish`` turns that callback into an ``Identity``: it checks
the state, exchanges the code with the PKCE verifier, validates the ID token (signature by the
provider's published keys, issuer, audience, expiry, nonce) and maps the group claim to a role.
Every failure is a ``SignInRefused``.

Authlib builds the requests and validates the ID token claims; joserfc (Authlib's JOSE
library) checks the signature.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import OAuth2Client as _OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from legato.clock import Clock, system_clock
from legato.security.sso import (
    DEFAULT_LABELS,
    Identity,
    SignInRefused,
    TomlTable,
    choose_role,
    join_url,
)

__all__ = ["CALLBACK_PATH", "Begun", "OidcClient", "OidcSettings"]

CALLBACK_PATH = "/auth/oidc/callback"
_KEYS = (
    "issuer",
    "client_id",
    "client_secret",
    "redirect_uri",
    "scopes",
    "group_claim",
    "role_map",
    "default_role",
    "username_claim",
    "label",
)


@dataclass(frozen=True)
class OidcSettings:
    """How Legato signs people in with one OpenID Connect provider (``[auth.oidc]``).

    ``client_secret`` is whatever the table holds: a reference (``${env:VAR}``,
    ``${secret:NAME}``, see ``sso.resolve_reference``) is resolved by the caller
    (``dataclasses.replace``) before an ``OidcClient`` is made. Empty: a public client that
    proves itself with PKCE alone.
    """

    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str = ""
    scopes: str = "openid profile email"
    group_claim: str = "groups"
    role_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_role: str | None = None
    username_claim: str = "preferred_username"
    label: str = DEFAULT_LABELS["oidc"]

    @classmethod
    def from_toml(cls, table: Mapping[str, Any], *, base_url: str) -> OidcSettings:
        """Settings from the ``[auth.oidc]`` table; ``base_url`` is Legato's public address.

        ``redirect_uri`` defaults to ``base_url`` + ``/auth/oidc/callback``. Raises
        ``SsoConfigError`` naming the key at fault.
        """
        t = TomlTable(table, "auth.oidc", _KEYS)
        issuer = _https_url(t, "issuer", t.text("issuer"))
        redirect_uri = _https_url(
            t, "redirect_uri", t.text("redirect_uri", join_url(base_url, CALLBACK_PATH))
        )
        scopes = t.raw.get("scopes", "openid profile email")
        if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
            scopes = " ".join(scopes)
        if not isinstance(scopes, str) or "openid" not in scopes.split():
            raise t.error('scopes must include "openid"')
        secret = t.raw.get("client_secret", "")
        if not isinstance(secret, str):
            raise t.error("client_secret must be a string")
        role_map, default_role = t.role_map()
        return cls(
            issuer=issuer,
            client_id=t.text("client_id"),
            client_secret=secret,
            redirect_uri=redirect_uri,
            scopes=" ".join(scopes.split()),
            group_claim=t.text("group_claim", "groups"),
            role_map=role_map,
            default_role=default_role,
            username_claim=t.text("username_claim", "preferred_username"),
            label=t.text("label", cls.label),
        )


def _https_url(t: TomlTable, key: str, url: str) -> str:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise t.error(f"{key} must be an https:// URL (http:// only on the loopback address)")
    return url


@dataclass(frozen=True)
class Begun:
    """A sign-in under way: ``url`` for the browser, the rest kept server side until finish.

    ``state`` ties the callback to this browser, ``nonce`` ties the ID token to this sign-in,
    ``code_verifier`` proves to the provider that the code's redeemer started the sign-in.
    """

    url: str
    state: str
    nonce: str
    code_verifier: str


class _ClientAuth(httpx.Auth, ClientAuth):
    # Authlib's client authentication (client_secret_basic, _post or none) as httpx auth.
    requires_request_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url, headers, body = self.prepare(
            request.method, str(request.url), request.headers, request.content
        )
        headers["Content-Length"] = str(len(body))
        yield httpx.Request(request.method, url, headers=headers, content=body)


class _TokenClient(_OAuth2Client):
    # Authlib's protocol client speaking through a given httpx.Client. One per exchange: it
    # keeps the last token on itself, which concurrent sign-ins must not share.
    client_auth_class = _ClientAuth
    oauth_error_class = OAuth2Error


class OidcClient:
    """The relying party for one provider. Thread-safe; discovery and keys are fetched once.

    ``http`` carries every request to the provider (a custom CA or proxy goes there); ``clock``
    is the time ID tokens are checked against; ``leeway`` the clock skew tolerated, seconds.
    """

    def __init__(
        self,
        settings: OidcSettings,
        *,
        http: httpx.Client | None = None,
        clock: Clock = system_clock,
        leeway: int = 60,
    ) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=10.0)
        self._clock = clock
        self._leeway = leeway
        self._lock = threading.Lock()
        self._metadata: Mapping[str, Any] | None = None
        self._keys: KeySet | None = None

    # -- the provider's published configuration ------------------------------------------

    def metadata(self) -> Mapping[str, Any]:
        """The provider's discovery document (fetched once); ``SignInRefused`` if unusable."""
        with self._lock:
            if self._metadata is None:
                url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                meta = self._get_json(url, "discovery document")
                # OpenID Connect Discovery 1.0, section 4.3: the document must name the very
                # issuer it was fetched for, or it may be another provider's.
                if meta.get("issuer") != self.settings.issuer:
                    raise SignInRefused(
                        f"the discovery document names issuer {meta.get('issuer')!r}, "
                        f"not {self.settings.issuer!r}"
                    )
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(meta.get(key), str):
                        raise SignInRefused(f"the discovery document has no {key}")
                self._metadata = MappingProxyType(dict(meta))
            return self._metadata

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        meta = self.metadata()
        with self._lock:
            if self._keys is None or refresh:
                jwks = self._get_json(meta["jwks_uri"], "signing keys")
                try:
                    self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError):
                    raise SignInRefused("the provider's signing keys are malformed") from None
            return self._keys

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPError as exc:
            raise SignInRefused(
                f"cannot fetch the provider's {what}: {_http_reason(exc)}"
            ) from None
        except ValueError:
            raise SignInRefused(f"the provider's {what} is not JSON") from None
        if not isinstance(body, dict):
            raise SignInRefused(f"the provider's {what} is not a JSON object")
        return body

    def _token_client(self) -> _TokenClient:
        s = self.settings
        return _TokenClient(
            self._http,
            client_id=s.client_id,
            client_secret=s.client_secret or None,
            scope=s.scopes,
            redirect_uri=s.redirect_uri,
            code_challenge_method="S256",
        )

    # -- the flow ---------------------------------------------------------------------------

    def begin(self) -> Begun:
        """Start a sign-in: the provider's URL for the browser, and what to keep until finish."""
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters: within RFC 7636's 43..128
        url, _ = self._token_client().create_authorization_url(
            self.metadata()["authorization_endpoint"],
            state=state,
            code_verifier=verifier,
            nonce=nonce,
        )
        return Begun(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def finish(self, begun: Begun, callback_query: Mapping[str, str]) -> Identity:
        """The identity behind the provider's callback to ``redirect_uri``.

        ``callback_query`` is the callback's query parameters; ``begun`` what ``begin`` gave
        for this browser. Raises ``SignInRefused`` on any failure.
        """
        query = dict(callback_query)
        if not hmac.compare_digest(str(query.get("state", "")), begun.state):
            raise SignInRefused("the callback's state does not match this sign-in")
        meta = self.metadata()
        if "error" in query:
            raise SignInRefused(f"the identity provider refused: {_one_line(query['error'])}")
        # RFC 9207: a provider that names itself in the callback must name the expected one
        # (a "mix-up" attack sends another provider's code here), and one that says it always
        # does must not leave it out.
        if query.get("iss", self.settings.issuer) != self.settings.issuer or (
            "iss" not in query and meta.get("authorization_response_iss_parameter_supported")
        ):
            raise SignInRefused("the callback does not come from the configured issuer")
        code = query.get("code")
        if not code:
            raise SignInRefused("the callback carries no authorization code")
        token = self._exchange(meta, code, begun.code_verifier)
        claims = self._id_token_claims(token, begun.nonce, meta)
        claims = self._with_userinfo(claims, token, meta)
        return self._identity(claims)

    def _exchange(self, meta: Mapping[str, Any], code: str, verifier: str) -> dict[str, Any]:
        try:
            token = self._token_client().fetch_token(
                meta["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
            )
        except OAuth2Error as exc:
            raise SignInRefused(
                f"the provider did not redeem the code: {_one_line(exc.error or 'error')}"
            ) from None
        except httpx.HTTPError as exc:
            raise SignInRefused(f"the token request failed: {_http_reason(exc)}") from None
        except (AuthlibBaseError, ValueError):
            raise SignInRefused("the provider's token response is malformed") from None
        if not isinstance(token.get("id_token"), str):
            raise SignInRefused("the provider's token response has no ID token")
        return dict(token)

    def _id_token_claims(
        self, token: Mapping[str, Any], nonce: str, meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        algorithms = [
            a for a in meta.get("id_token_signing_alg_values_supported", ["RS256"]) if a != "none"
        ]
        try:
            try:
                decoded = jwt.decode(token["id_token"], self._key_set(), algorithms=algorithms)
            except InvalidKeyIdError:  # the provider rolled its keys since they were fetched
                decoded = jwt.decode(
                    token["id_token"], self._key_set(refresh=True), algorithms=algorithms
                )
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": self.settings.issuer},
                    "aud": {"essential": True, "value": self.settings.client_id},
                },
                {
                    "nonce": nonce,
                    "client_id": self.settings.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            claims.validate(now=int(self._clock().timestamp()), leeway=self._leeway)
        except JoseError as exc:
            raise SignInRefused(f"the ID token is invalid ({exc.error})") from None
        except (ValueError, TypeError):
            raise SignInRefused("the ID token is malformed") from None
        return dict(claims)

    def _with_userinfo(
        self, claims: dict[str, Any], token: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        # Many providers put only "sub" in the ID token of the code flow and the profile,
        # e-mail and groups at the userinfo endpoint; ask it when the ID token lacks them.
        s = self.settings
        wanted = (s.group_claim.split(".")[0], s.username_claim, "email")
        userinfo_url = meta.get("userinfo_endpoint")
        access_token = token.get("access_token")
        if all(k in claims for k in wanted) or not userinfo_url or not access_token:
            return claims
        try:
            response = self._http.get(
                userinfo_url,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
            response.raise_for_status()
            info = response.json()
        except httpx.HTTPError as exc:
            raise SignInRefused(f"the userinfo request failed: {_http_reason(exc)}") from None
        except ValueError:
            raise SignInRefused("the provider's userinfo is not JSON") from None
        # OpenID Connect Core 1.0, 5.3.2: userinfo about another subject must not be used.
        if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
            raise SignInRefused("the provider's userinfo is about another subject")
        return {**info, **claims}

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        s = self.settings
        subject = str(claims["sub"])
        username = next(
            (
                str(claims[k])
                for k in (s.username_claim, "preferred_username", "email", "sub")
                if isinstance(claims.get(k), str) and claims[k]
            ),
            subject,
        )
        groups = _groups(claims, s.group_claim)
        role = choose_role(groups, s.role_map, s.default_role)
        if role is None:
            raise SignInRefused(f"no group of {username!r} maps to a Legato role")
        email = claims.get("email")
        return Identity(
            subject=subject,
            username=username,
            email=email if isinstance(email, str) else None,
            groups=groups,
            role=role,
            provider="oidc",
        )


def _groups(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The group claim as names: a list, or one string; a dotted name reaches into objects
    (``realm_access.roles``) when no claim has that literal name."""
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def _http_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:200]
