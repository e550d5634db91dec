"""An unexpected error answers 500 with a generic body; its traceback goes to the server's log.

Starlette's own last resort answers outside every middleware, so its answer would lack the
security headers; this one sits inside them. Errors a handler answers on purpose (HTTP
exceptions, a body too large) pass through untouched.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from legato.server.answers import WatchedSend, answer, error_body

log = logging.getLogger("legato.server")

#: What a client is told: nothing of the code, the store or the paths involved.
GENERIC = "internal server error: the server's log says more"


class GenericErrors:
    """ASGI middleware: an exception escaping the app becomes a generic 500 (logged)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except HTTPException:
            raise
        except Exception:
            if scope["type"] != "http":
                raise
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if watched.started:  # half an answer is out: only dropping the connection says so
                raise
            if str(scope.get("path", "")).startswith("/api/"):
                await answer(send, 500, error_body(GENERIC))
            else:
                page = f"<!doctype html><title>500</title><h1>Server error</h1><p>{GENERIC}</p>"
                await answer(send, 500, page.encode(), b"text/html; charset=utf-8")
