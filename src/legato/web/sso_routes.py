"""Single sign-on pages: sending the browser to an identity provider and taking it back.

- ``GET /auth/oidc/login?next=`` and ``GET /auth/saml/login?next=`` begin a sign-in
  (``legato.services.single_sign_on``) and redirect to the provider; the browser gets a
  cookie binding the sign-in to it (HttpOnly, SameSite=Lax, path ``/auth/``).
- ``GET /auth/oidc/callback``: the provider's redirect back; ends in a session.
- ``POST /auth/saml/acs``: the Response the provider's page posts from its own site, so it
  carries no session cookie and no CSRF token (it proves itself by its signature and its
  InResponseTo). Once checked, the browser is redirected to ``GET /auth/saml/done``, which
  sees the binding cookie again and opens the session.
- ``GET /auth/saml/metadata``: the service provider's metadata for the provider's admin.

A refusal shows the sign-in page with its one-line reason; the service has recorded it in
the audit trail. The callback addresses are built on ``[web] public_url`` when set, else on
the address the request came to (which the Host check has limited to the server's own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from legato.config import ProjectConfig
from legato.security.sso import SignInRefused, SsoConfigError
from legato.services.door import Door
from legato.services.service_errors import Unauthenticated
from legato.services.signin import Issued
from legato.services.single_sign_on import SignedOn, Started

#: The cookie binding a sign-in under way to the browser that began it.
BROWSER_COOKIE = "legato_sso"
#: The largest SAML Response taken (base64 of a signed, maybe encrypted, XML document).
MAX_SAML_RESPONSE = 512 * 1024

#: The sign-in page with an error: (request, next, error, status code).
FormPage = Callable[[Request, str, str | None, int], Response]
#: The answer that sets a session's cookie and goes on to ``next``.
SignedIn = Callable[[Request, Issued, str], Response]


def mount(
    app: FastAPI,
    ctx: Door,
    settings: ProjectConfig,
    *,
    form: FormPage,
    signed_in: SignedIn,
    secure: Callable[[Request], bool],
) -> None:
    """Add the ``/auth/...`` routes to ``app``; ``form`` and ``signed_in`` are the sign-in
    page's, ``secure`` says whether a cookie for this request must be Secure."""
    r = APIRouter(include_in_schema=False)

    def base_url(request: Request) -> str:
        return settings.public_url or str(request.base_url).rstrip("/")

    def source(request: Request) -> str | None:
        return request.client.host if request.client else None

    def begin(
        request: Request, next_: str, start: Callable[[str, str, str | None], Started]
    ) -> Response:
        try:
            started = start(base_url(request), next_, _browser(request))
        except SignInRefused as exc:
            return form(request, next_, exc.reason, 502)
        out = RedirectResponse(started.url, status_code=303)
        out.set_cookie(
            BROWSER_COOKIE, started.browser, max_age=3600, httponly=True, samesite="lax",
            secure=secure(request), path="/auth/",
        )  # fmt: skip
        return out

    def end(request: Request, finish: Callable[[], SignedOn]) -> Response:
        try:
            done = finish()
        except SignInRefused as exc:
            return form(request, "/", exc.reason, 401)
        except Unauthenticated as exc:
            return form(request, "/", str(exc), 401)
        return signed_in(request, done.issued, done.next)

    @r.get("/auth/oidc/login")
    def oidc_login(request: Request, next: str = "/") -> Response:
        return begin(request, next, ctx.sso.begin_oidc)

    @r.get("/auth/oidc/callback")
    def oidc_callback(request: Request) -> Response:
        query, base = dict(request.query_params), base_url(request)
        return end(
            request, lambda: ctx.sso.finish_oidc(base, query, _browser(request), source(request))
        )

    @r.get("/auth/saml/login")
    def saml_login(request: Request, next: str = "/") -> Response:
        return begin(request, next, ctx.sso.begin_saml)

    @r.post("/auth/saml/acs")
    def saml_acs(
        request: Request,
        SAMLResponse: Annotated[str, Form(max_length=MAX_SAML_RESPONSE)] = "",
        RelayState: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        try:
            done = ctx.sso.answer_saml(base_url(request), SAMLResponse, RelayState, source(request))
        except SignInRefused as exc:
            return form(request, "/", exc.reason, 401)
        return RedirectResponse(f"/auth/saml/done?key={done}", status_code=303)

    @r.get("/auth/saml/done")
    def saml_done(request: Request, key: str = "") -> Response:
        return end(
            request, lambda: ctx.sso.finish_saml(key, _browser(request), source(request))
        )

    @r.get("/auth/saml/metadata")
    def saml_metadata(request: Request) -> Response:
        try:
            xml = ctx.sso.saml_metadata(base_url(request))
        except SsoConfigError as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        return Response(xml, media_type="application/samlmetadata+xml")

    app.include_router(r)


def _browser(request: Request) -> str | None:
    return request.cookies.get(BROWSER_COOKIE) or None
