"""A bound on the size of request bodies, checked as they are read.

The check is in the ASGI ``receive`` a route reads its body with: a route that answers before
it reads (the webhook, without its token) answers as it means to and nothing of the body is
read; a route that reads a body announced larger than the limit (``Content-Length``) fails at
its first read, before any byte arrives; a body sent in chunks fails at the chunk that goes
past the limit. Either way the answer is 413 in the API's error shape, and the server holds at
most the limit of any one request.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legato.server.answers import WatchedSend, answer, error_body


class BodyTooLarge(HTTPException):
    """A request's body is larger than the server takes (413).

    An HTTPException, so that the framework's reading of a body lets it through to the error
    handlers, which answer it like any other error.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {limit} bytes "
            "(the server's limit: [limits] request_bytes in legato.toml)",
        )


class BodyLimit:
    """ASGI middleware: no request body larger than ``limit`` bytes is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        limit = self.limit
        seen = 0
        watched = WatchedSend(send)

        async def limited_receive() -> Message:
            nonlocal seen
            if announced is not None and announced > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, watched)
        except BodyTooLarge as exc:
            # Raised where no error handler answers it (outside a route, say).
            if watched.started:
                raise
            await answer(send, 413, error_body(exc.detail), extra=[(b"connection", b"close")])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
