"""Who sent each request: the sign-in middleware in front of every route.

Every request is authenticated here before any route sees it, and the actor it proves is bound
for the request (``legato.services.actor.acting_as``); the services the routes call act for
that actor and the gate checks its permissions. Deny by default: a request with no valid
credential gets 401 on the API and a redirect to the sign-in page elsewhere, except for the
few public paths (the sign-in pages, single sign-on callbacks, static files and webhooks,
which prove themselves with their trigger's token).

A browser session's state-changing requests must carry its CSRF token (the ``X-CSRF-Token``
header, which the UI's script sends, or a ``csrf`` form field); an API token needs none,
since a browser never sends it on its own.
"""

from __future__ import annotations

import glob
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool

from legato.security.roles import Permissions
from legato.services.actor import NOBODY, Actor, ActorKind, acting_as
from legato.services.service_errors import Unauthenticated
from legato.services.signin import SignIn
from legato.web.signin import session_cookie

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Paths anyone may reach: signing in, and what the sign-in page itself needs.
PUBLIC_PREFIXES = ("/signin", "/auth/", "/static/")
#: Prometheus' scrapes: refused with 401 like the API when they carry no token.
METRICS_PATH = "/metrics"
#: Webhooks: the route checks the trigger's own token.
HOOK_PREFIX = "/api/v1/hooks/"


class SignInMiddleware:
    """Authenticate every HTTP request and bind its actor; refuse it when it has none."""

    def __init__(self, app: ASGIApp, signin: SignIn) -> None:
        self.app = app
        self.signin = signin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        source = _client(scope)
        if path.startswith(HOOK_PREFIX):
            with acting_as(_hook_actor(path, source)):
                await self.app(scope, receive, send)
            return
        try:
            kind, credential = _credential(scope)
            signed = self.signin.recent(kind, credential, source)
            if signed is None:  # the store's word, read off the event loop
                check = self.signin.bearer if kind == "bearer" else self.signin.session
                signed = await run_in_threadpool(check, credential, source)
        except Unauthenticated as exc:
            signed = None
            refusal = str(exc)
        public = path.startswith(PUBLIC_PREFIXES)
        if signed is None:
            if public:
                with acting_as(NOBODY):
                    await self.app(scope, receive, send)
                return
            await _refuse(scope, send, refusal)
            return
        state = scope.setdefault("state", {})
        state["actor"] = signed.actor
        state["csrf"] = signed.csrf
        own_check = public and path != "/signout"  # the sign-in form carries its own token
        changes = scope.get("method", "GET") not in SAFE_METHODS
        if signed.csrf is not None and changes and not own_check:
            sent = _header(scope, CSRF_HEADER)
            if sent is None and _form(scope):
                receive, sent = await _form_csrf(receive)
            if sent is None or not hmac.compare_digest(sent.encode(), signed.csrf.encode()):
                await _json(send, 403, "this form or page is out of date (CSRF check): reload it")
                return
        with acting_as(signed.actor):
            await self.app(scope, receive, send)



def _credential(scope: Scope) -> tuple[str, str]:
    """What the request proves itself with: ``("bearer", token)`` or ``("session", id)``."""
    auth = _header(scope, b"authorization")
    if auth is not None and auth[:7].lower() == "bearer ":
        return "bearer", auth[7:].strip()
    session = session_cookie(scope)
    if session:
        return "session", session
    raise Unauthenticated("sign in first: send an API token as 'Authorization: Bearer ...'")


def _hook_actor(path: str, source: str | None) -> Actor:
    # /api/v1/hooks/{pipeline}/{trigger}: the caller may fire that webhook, nothing else, and
    # only once the route has checked the trigger's token.
    parts = path[len(HOOK_PREFIX) :].split("/")
    pipeline = unquote(parts[0]) if parts else ""
    trigger = unquote(parts[1]) if len(parts) > 1 else ""
    return Actor(
        ActorKind.HOOK,
        f"{pipeline}/{trigger}",
        Permissions(frozenset({"runs.trigger"})),
        auth="hook",
        source=source,
        # The name as a pattern that matches it alone (a path may hold ``*`` or ``[``).
        scope=(glob.escape(pipeline),),
    )


async def _refuse(scope: Scope, send: Send, reason: str) -> None:
    path: str = scope["path"]
    # A program (an API client, Prometheus scraping /metrics) is told why, not redirected.
    if path.startswith("/api/") or path == METRICS_PATH or scope["type"] != "http":
        await _json(send, 401, reason, {b"www-authenticate": b'Bearer realm="legato"'})
        return
    query = scope.get("query_string", b"").decode("latin-1")
    back = path + (f"?{query}" if query else "")
    location = "/signin?next=" + quote(back, safe="")
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _json(
    send: Send, status: int, message: str, extra: dict[bytes, bytes] | None = None
) -> None:
    body = json.dumps({"error": message, "field": None}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += list((extra or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _form(scope: Scope) -> bool:
    kind = _header(scope, b"content-type") or ""
    return kind.startswith("application/x-www-form-urlencoded")


async def _form_csrf(receive: Receive) -> tuple[Receive, str | None]:
    """Read a urlencoded body (bounded by the body limit in front) for its ``csrf`` field,
    and hand the route a receive that replays it."""
    from urllib.parse import parse_qs

    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    values = parse_qs(body.decode("latin-1")).get("csrf")
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay, values[0] if values else None
