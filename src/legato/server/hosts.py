"""Which addresses the server answers to, and from which pages it takes commands.

- A request whose ``Host`` is not one of the server's own addresses is refused (400): a page
  on another site that points its own name at this machine (DNS rebinding) cannot read or
  command it.
- A state-changing request (POST, PUT, PATCH, DELETE) sent by a browser from another site
  carries that site's ``Origin`` (or, from older browsers, ``Referer``): refused (403), even
  on the routes that need no token. Callers that are not browsers (curl, a webhook sender)
  send neither header and pass. The one exception is the SAML assertion consumer service: an
  identity provider's page posts its Response there from the provider's own site, by design
  of the protocol; the Response proves itself (its signature, the request it answers) and
  the sign-in ends on a same-site redirect that must show the browser's own cookie.

The server's addresses are the host of ``[web] public_url`` when it is set (the name users
and a TLS-terminating proxy use), else the address it is bound to and the loopback names,
each with the port.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from legato.security.sso import ACS_PATH
from legato.server.answers import answer, error_body

#: Methods that change something; only they are checked for their origin.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Paths other sites post to by design (see the module's docstring).
CROSS_SITE_POSTS = frozenset({ACS_PATH})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: Addresses that mean "every interface": the machine's own names stand for them.
WILDCARDS = ("0.0.0.0", "::", "")

Address = tuple[str, int]  # (lower-case host without brackets, port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: 127.0.0.0/8, ::1 or localhost."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_host(text: str, default_port: int) -> Address | None:
    """``host[:port]`` (a Host header, IPv6 in brackets) as an :data:`Address`; None when it
    is not one."""
    try:
        parts = urlsplit("//" + text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return parts.hostname.lower(), default_port if port is None else port


def served_hosts(public_url: str | None, host: str, port: int) -> frozenset[str]:
    """The ``host:port`` names a server bound to ``host``:``port`` answers to: the host of
    ``public_url`` when given, else ``host`` and the loopback names (and the machine's own
    names when ``host`` is every interface)."""
    if public_url:
        parts = urlsplit(public_url)
        default = 443 if parts.scheme == "https" else 80
        return frozenset({_name(parts.hostname or "", parts.port or default)})
    names = {host, *LOOPBACK_NAMES}
    if host in WILDCARDS:
        names |= {socket.gethostname(), socket.getfqdn()}
    return frozenset(_name(n, port) for n in names if n not in WILDCARDS)


def _name(host: str, port: int) -> str:
    host = host.strip("[]").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HostCheck:
    """ASGI middleware: requests to another ``Host`` get 400; state-changing requests from
    another origin get 403 (see the module's docstring).

    ``allowed`` holds ``host[:port]`` names (a name without a port means the scheme's default
    port); ``public_url``, when set, is the one origin the pages are served from.
    """

    def __init__(self, app: ASGIApp, allowed: Iterable[str], public_url: str | None = None) -> None:
        self.app = app
        self.allowed: frozenset[Address] = frozenset(
            a for a in (parse_host(n, 80) for n in allowed) if a is not None
        ) | frozenset(a for a in (parse_host(n, 443) for n in allowed) if a is not None)
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the app serves no websockets
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        secure = scope.get("scheme") == "https"
        host = headers.get("host", "")
        address = parse_host(host, 443 if secure else 80)
        if address is None or address not in self.allowed:
            await _refuse(
                send,
                400,
                f"this server does not answer to the host {host!r}; the address users reach it "
                "at is [web] public_url in legato.toml",
            )
            return
        if scope["method"] in STATE_CHANGING and scope["path"] not in CROSS_SITE_POSTS:
            sender = headers.get("origin") or headers.get("referer")
            own = self.public_url or f"{'https' if secure else 'http'}://{host}"
            if sender is not None and origin_of(sender) != origin_of(own):
                await _refuse(send, 403, f"cross-site request refused (from {sender[:200]!r})")
                return
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    # Of each header the first; Host and Origin come once from a browser.
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def origin_of(url: str) -> tuple[str, Address] | None:
    """The origin of ``url`` (an Origin or Referer header) as (scheme, address), the default
    port filled in; None when it has none ("null", a relative or malformed URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    address = parse_host(parts.netloc, 443 if scheme == "https" else 80)
    return None if address is None else (scheme, address)


async def _refuse(send: Send, status: int, message: str) -> None:
    await answer(send, status, error_body(message))
