"""Single sign-on from begin to session: OpenID Connect and SAML sign-ins for the web layer.

``legato.security`` speaks the protocols (``OidcClient``, ``SamlClient``); this service keeps
what a sign-in under way needs in the store (so any web process behind a load balancer can
finish what another began), takes it once (a replayed callback or response finds nothing),
binds it to the browser that began it (a cookie the web layer keeps: nobody can finish their
own sign-in in someone else's browser), opens the session through ``SignIn.identity`` and
records every refusal in the audit trail.

SAML answers with a form the identity provider's page posts to Legato from its own site, so
the browser sends no SameSite=Lax cookie with it. The response is checked there
(``answer_saml``) and the sign-in ends one step later (``finish_saml``), on the redirect the
browser follows as a top-level navigation, which carries the cookie.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from legato.domain.records import AlreadyExists
from legato.security.roles import RoleError
from legato.security.sso import DEFAULT_LABELS, SignInRefused, SsoConfigError, resolve_reference
from legato.security.tokens import hash_secret

if TYPE_CHECKING:
    from legato.domain.access import PendingSignIn
    from legato.security.oidc import OidcClient
    from legato.security.saml import SamlClient
    from legato.services.signin import Issued, SignIn
    from legato.services.workspace import Workspace

__all__ = ["KINDS", "Provider", "SignedOn", "SingleSignOn", "Started"]

T = TypeVar("T")

#: How long a browser has at the identity provider before a sign-in under way is forgotten.
STATE_MINUTES = 10.0
#: Between a checked SAML response and the redirect that ends the sign-in: a moment.
DONE_SECONDS = 120.0
#: The protocols, as their ``[auth.*]`` tables and paths name them.
KINDS = ("oidc", "saml")


@dataclass(frozen=True, slots=True)
class Provider:
    """An identity provider the sign-in page offers: ``kind`` (oidc, saml), its button's
    ``label``."""

    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Started:
    """A sign-in begun: send the browser to ``url``, and keep ``browser`` in its cookie."""

    url: str
    browser: str


@dataclass(frozen=True, slots=True)
class SignedOn:
    """A sign-in ended: the session ``issued`` and where the browser wanted to go."""

    issued: Issued
    next: str


class SingleSignOn:
    """Single sign-on for one workspace. The clients are made on first use, per public
    address (``base_url``: ``[web] public_url``, else the address a request came to), and
    kept: an OIDC client fetches the provider's discovery document and keys once."""

    def __init__(self, ws: Workspace, signin: SignIn) -> None:
        self.ws = ws
        self.signin = signin
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], OidcClient | SamlClient] = {}

    def providers(self) -> tuple[Provider, ...]:
        """The providers configured in legato.toml, for the sign-in page (reads no network)."""
        defaults = DEFAULT_LABELS
        found = []
        for kind in KINDS:
            table = self.ws.config.auth_tables.get(kind)
            if table is not None:
                label = table.get("label")
                found.append(Provider(kind, label if isinstance(label, str) else defaults[kind]))
        return tuple(found)

    # -- OpenID Connect ---------------------------------------------------------------------

    def begin_oidc(self, base_url: str, next_: str, browser: str | None) -> Started:
        """Start an OIDC sign-in for the browser whose cookie holds ``browser`` (None: it has
        none yet, one is made). SignInRefused when the provider cannot be used."""
        begun = self._refusing("oidc", None, lambda: self._oidc(base_url).begin())
        data = {"nonce": begun.nonce, "code_verifier": begun.code_verifier, "next": next_}
        return self._keep(begun.state, "oidc", browser, data, begun.url)

    def finish_oidc(
        self, base_url: str, query: Mapping[str, str], browser: str | None, source: str | None
    ) -> SignedOn:
        """End the OIDC sign-in the provider's callback (its ``query``) answers and open a
        session. SignInRefused (recorded in the audit trail) or Unauthenticated."""

        def finish() -> SignedOn:
            pending = self._take(query.get("state", ""), "oidc", browser)
            data = pending.data
            from legato.security.oidc import Begun

            begun = Begun("", query.get("state", ""), data["nonce"], data["code_verifier"])
            identity = self._oidc(base_url).finish(begun, query)
            return self._open(identity.username, identity.role, "oidc", source, data["next"])

        return self._refusing("oidc", source, finish)

    # -- SAML -----------------------------------------------------------------------------------

    def begin_saml(self, base_url: str, next_: str, browser: str | None) -> Started:
        """Start a SAML sign-in (as ``begin_oidc``): the AuthnRequest's RelayState is a fresh
        key to what it needs on its return."""
        relay = secrets.token_urlsafe(32)
        url, request_id = self._refusing(
            "saml", None, lambda: self._saml(base_url).begin(relay_state=relay)
        )
        return self._keep(relay, "saml", browser, {"request": request_id, "next": next_}, url)

    def answer_saml(
        self, base_url: str, saml_response: str, relay_state: str, source: str | None
    ) -> str:
        """Check the Response the identity provider had the browser post; a one-time key for
        ``finish_saml``, which the browser must bring back. SignInRefused (recorded)."""

        def answer() -> str:
            # Posted from the provider's site: the browser's cookie comes with the next step.
            pending = self._take(relay_state, "saml", None, bound=False)
            identity = self._saml(base_url).finish(saml_response, pending.data["request"])
            done = secrets.token_urlsafe(32)
            now = self.ws.clock()
            data = {"name": identity.username, "role": identity.role, "next": pending.data["next"]}
            self.ws.store.access.add_pending(
                hash_secret(done), "saml-done", pending.browser_hash, data,
                now, now + timedelta(seconds=DONE_SECONDS),
            )  # fmt: skip
            return done

        return self._refusing("saml", source, answer)

    def finish_saml(self, done: str, browser: str | None, source: str | None) -> SignedOn:
        """Open the session of a SAML sign-in ``answer_saml`` checked, in the browser that
        began it. SignInRefused (recorded) or Unauthenticated."""

        def finish() -> SignedOn:
            data = self._take(done, "saml-done", browser).data
            return self._open(data["name"], data["role"], "saml", source, data["next"])

        return self._refusing("saml", source, finish)

    def saml_metadata(self, base_url: str) -> str:
        """This service provider's SAML metadata (XML). SsoConfigError when SAML is not set
        up."""
        return self._saml(base_url).metadata()

    # -- the parts ------------------------------------------------------------------------

    def _oidc(self, base_url: str) -> OidcClient:
        from legato.security.oidc import OidcClient

        client = self._client("oidc", base_url)
        assert isinstance(client, OidcClient)
        return client

    def _saml(self, base_url: str) -> SamlClient:
        from legato.security.saml import SamlClient

        client = self._client("saml", base_url)
        assert isinstance(client, SamlClient)
        return client

    def _client(self, kind: str, base_url: str) -> OidcClient | SamlClient:
        table = self.ws.config.auth_tables.get(kind)
        if table is None:
            raise SsoConfigError(f"{kind.upper()} sign-in is not set up: no [auth.{kind}]")
        with self._lock:
            client = self._clients.get((kind, base_url))
            if client is None:
                client = _make_client(kind, table, base_url)
                self._clients[(kind, base_url)] = client
            return client

    def _keep(
        self, key: str, kind: str, browser: str | None, data: dict[str, Any], url: str
    ) -> Started:
        browser = browser or secrets.token_urlsafe(32)
        now = self.ws.clock()
        self.ws.store.access.add_pending(
            hash_secret(key),
            kind,
            hash_secret(browser),
            data,
            now,
            now + timedelta(minutes=STATE_MINUTES),
        )
        return Started(url, browser)

    def _take(
        self, key: str, kind: str, browser: str | None, *, bound: bool = True
    ) -> PendingSignIn:
        """The sign-in under way kept under ``key``, taken (deleted) before anything else is
        checked: whatever happens next, it is spent. ``bound``: it must be ``browser``'s."""
        pending = self.ws.store.access.take_pending(hash_secret(key), kind, self.ws.clock())
        if pending is None:
            raise SignInRefused("this sign-in is unknown, was used already or took too long")
        if bound and (
            browser is None or not hmac.compare_digest(pending.browser_hash, hash_secret(browser))
        ):
            raise SignInRefused("this sign-in was begun in another browser")
        return pending

    def _open(self, name: str, role: str, method: str, source: str | None, next_: str) -> SignedOn:
        try:
            issued = self.signin.identity(name, role, method, source)
        except RoleError as exc:
            raise SignInRefused(f"the role of {name!r} cannot be used: {exc}") from None
        except AlreadyExists:
            raise SignInRefused(
                f"{name!r} is the name of another account: a sign-in with {method.upper()} cannot "
                "take it over"
            ) from None
        return SignedOn(issued, next_)

    def _refusing(self, method: str, source: str | None, work: Callable[[], T]) -> T:
        """``work()``; a refusal or an unusable configuration is recorded in the audit trail
        and raised as SignInRefused with a one-line reason."""
        try:
            result = work()
        except SignInRefused as exc:
            self.signin.refused(method, exc.reason, source)
            raise
        except SsoConfigError as exc:
            reason = f"single sign-on is not set up right: {exc}"
            self.signin.refused(method, reason, source)
            raise SignInRefused(reason) from None
        return result


def _make_client(kind: str, table: Mapping[str, Any], base_url: str) -> OidcClient | SamlClient:
    # Imported here: pysaml2 and Authlib take over half a second to import, and most
    # commands never sign anyone in.
    from legato.security.oidc import OidcClient, OidcSettings
    from legato.security.saml import SamlClient, SamlSettings

    if kind == "saml":
        return SamlClient(SamlSettings.from_toml(table, base_url=base_url))
    settings = OidcSettings.from_toml(table, base_url=base_url)
    # ${secret:NAME} waits for the encrypted secrets store: pass its reader as `secret` here.
    secret = resolve_reference(
        settings.client_secret, "[auth.oidc] client_secret", env=os.environ, secret=None
    )
    return OidcClient(dataclasses.replace(settings, client_secret=secret))
