"""The sign-in and sign-out pages, and the one-time sign-in link ``legato up`` prints.

Signing in opens a server-side session (``legato.services.signin``) whose id goes to the
browser in an HttpOnly, SameSite=Lax cookie (Secure under TLS). The sign-in form carries its
own CSRF token (a random value in a short-lived cookie and in the form, which must agree), so
another site cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from http.cookies import SimpleCookie
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from legato.config import ProjectConfig
from legato.security.tokens import new_csrf
from legato.services.door import Door
from legato.services.service_errors import Unauthenticated
from legato.services.signin import Issued
from legato.web import sso_routes

FORM_COOKIE = "legato_signin"
SESSION_COOKIE = "legato_session"


def mount(app: FastAPI, ctx: Door, templates: Jinja2Templates, settings: ProjectConfig) -> None:
    """Add ``/signin``, ``/signin/link`` and ``/signout`` to ``app``, and the single sign-on
    routes under ``/auth/`` (``legato.web.sso_routes``)."""
    r = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    auth = settings.auth

    def form(request: Request, next_: str, error: str | None = None, code: int = 200) -> Response:
        token = new_csrf()
        page = templates.TemplateResponse(
            request,
            "signin.html",
            {
                "project": settings.name,
                "environment": settings.environment,
                "next": _local(next_),
                "csrf": token,
                "error": error,
                "providers": ctx.sso.providers(),
            },
            status_code=code,
        )
        page.set_cookie(
            FORM_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
            secure=_secure(request, auth.cookie_secure), path="/signin",
        )
        return page

    def signed_in(request: Request, issued: Issued, next_: str) -> Response:
        out = RedirectResponse(_local(next_), status_code=303)
        out.set_cookie(
            SESSION_COOKIE,
            issued.session_id,
            max_age=int(auth.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=_secure(request, auth.cookie_secure),
            path="/",
        )
        out.delete_cookie(FORM_COOKIE, path="/signin")
        return out

    sso_routes.mount(
        app, ctx, settings, form=form, signed_in=signed_in,
        secure=lambda request: _secure(request, auth.cookie_secure),
    )  # fmt: skip

    @r.get("/signin")
    def signin_page(request: Request, next: str = "/") -> Response:
        return form(request, next)

    @r.post("/signin")
    def signin(
        request: Request,
        name: Annotated[str, Form(max_length=200)] = "",
        password: Annotated[str, Form(max_length=1000)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        expected = request.cookies.get(FORM_COOKIE, "")
        if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
            return form(request, next, "The form was out of date: please try again.", 403)
        try:
            issued = ctx.signin.password(name, password, _source(request))
        except Unauthenticated as exc:
            return form(request, next, str(exc), 401)
        return signed_in(request, issued, next)

    @r.get("/signin/link")
    def signin_link(request: Request, token: str = "", next: str = "/") -> Response:
        try:
            issued = ctx.signin.link(token, _source(request))
        except Unauthenticated as exc:
            return form(request, next, str(exc), 401)
        return signed_in(request, issued, next)

    @r.post("/signout")
    def signout(request: Request) -> Response:
        session = session_cookie(request.scope)
        if session:
            ctx.signin.sign_out(session, _source(request))
        out = RedirectResponse("/signin", status_code=303)
        out.delete_cookie(SESSION_COOKIE, path="/")
        return out

    app.include_router(r)


def session_cookie(scope: MutableMapping[str, Any]) -> str | None:
    """The session id the browser sent, if any."""
    headers = scope.get("headers", ())
    raw = next((bytes(v).decode("latin-1") for k, v in headers if k == b"cookie"), None)
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header: as good as none
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def _local(target: str) -> str:
    # Only a path on this site: never an absolute or scheme-relative URL (an open redirect).
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _secure(request: Request, configured: bool | None) -> bool:
    return request.url.scheme == "https" if configured is None else configured


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def context(request: Request) -> dict[str, Any]:
    """What every page's header shows of the signed-in actor (its name, its CSRF token)."""
    actor = getattr(request.state, "actor", None)
    return {
        "me": actor.name if actor is not None else None,
        "my_role": actor.role if actor is not None else None,
        "csrf": getattr(request.state, "csrf", None),
        "may_audit": actor is not None and actor.may("audit.read"),
    }
