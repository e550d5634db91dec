"""An unexpected error answers 500 with a generic body; its traceback goes to the server's log.

Starlette's own last resort answers outside every middleware, so its answer would lack the
security headers; this one sits inside them. Errors a handler answers on purpose (HTTP
exceptions, a body too large) pass through untouched.
"""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("legato.server")

#: What a client is told: nothing of the code, the store or the paths involved.
GENERIC = "internal server error: the server's log says more"


class GenericErrors:
    """ASGI middleware: an exception escaping the app becomes a generic 500 (logged)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except HTTPException:
            raise
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:  # half an answer is out: only dropping the connection says it failed
                raise
            page = not str(scope.get("path", "")).startswith("/api/")
            if page:
                body = f"<!doctype html><title>500</title><h1>Server error</h1><p>{GENERIC}</p>"
                kind = b"text/html; charset=utf-8"
            else:
                body = json.dumps({"error": GENERIC, "field": None})
                kind = b"application/json"
            data = body.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", kind),
                        (b"content-length", str(len(data)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": data})
