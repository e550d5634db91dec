"""Security headers on every response.

The Content-Security-Policy lets a page run only the project's own script file and style
sheet: no inline script, no event-handler attribute, no inline style, no framing, no foreign
form target. Whatever a user supplied and the pages show (params, partition keys, error
messages, log lines) cannot run in a browser even if escaping failed somewhere. Under TLS,
``Strict-Transport-Security`` tells browsers to use HTTPS only from then on.

A route may set a header of its own (the API docs page sets a policy that admits its
scripts): the middleware adds only the headers a response does not have.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000"

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
)


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response, and HSTS on those sent
    over HTTPS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = SECURITY_HEADERS
        if scope.get("scheme") == "https":
            wanted = (*wanted, ("strict-transport-security", HSTS))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [
                    (name.encode(), value.encode())
                    for name, value in wanted
                    if name.encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
