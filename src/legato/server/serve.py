"""Serving the app with uvicorn in a thread, so the caller keeps the main thread (and signals)."""

from __future__ import annotations

import errno
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.security.tls import TlsFiles
from legato.server.hosts import is_loopback

if TYPE_CHECKING:
    from pathlib import Path

    from legato.config import ProjectConfig


class ServeError(Exception):
    """The server cannot listen where it was asked to; the message is one line for a user."""


@dataclass
class Served:
    """A running server: where it answers, and how to stop it."""

    server: Any  # uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to stop and wait for it (open live streams get one second)."""
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(
    app: Any,
    host: str,
    port: int,
    *,
    stop: threading.Event | None = None,
    sock: socket.socket | None = None,
    tls: TlsFiles | None = None,
) -> Served:
    """Start ``app`` on ``host``:``port`` (0: any free port) in a daemon thread; wait until it
    listens. ServeError if the address cannot be bound (a port in use, say), RuntimeError if
    the server fails after that. ``stop`` ends the wait early when set. ``sock``, from
    :func:`bind_socket`, is the address already bound (``host`` and ``port`` then only name it).
    ``tls``: serve HTTPS with this certificate and key (checked first: ServeError if unusable).
    """
    import uvicorn

    if tls is not None:
        check_tls(tls)

    # Bound here rather than by uvicorn, which logs and exits the process when it cannot bind.
    sock = sock or bind_socket(host, port)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        # Open live streams (run pages) must not hold up a stop.
        timeout_graceful_shutdown=1,
        ssl_certfile=None if tls is None else str(tls.cert),
        ssl_keyfile=None if tls is None else str(tls.key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="web server", daemon=True
    )
    thread.start()
    waiting = stop or threading.Event()
    while not server.started and thread.is_alive():
        waiting.wait(0.01)
    if not server.started:
        sock.close()
        raise RuntimeError(f"the web server could not listen on {host}:{port}")
    bound = server.servers[0].sockets[0].getsockname()
    return Served(server, thread, f"{'http' if tls is None else 'https'}://{host}:{bound[1]}")


def choose_tls(
    settings: ProjectConfig, cert: Path | None = None, key: Path | None = None
) -> TlsFiles | None:
    """The certificate and key to serve with: ``cert`` and ``key`` (the command's flags) when
    given, else ``[web] tls_cert`` and ``tls_key``; None for plain HTTP."""
    if (cert is None) != (key is None):
        raise ServeError("--tls-cert and --tls-key go together: give both or neither")
    if cert is not None and key is not None:
        return TlsFiles(cert.resolve(), key.resolve())
    if settings.tls_cert is not None and settings.tls_key is not None:
        return TlsFiles(settings.tls_cert, settings.tls_key)
    return None


def check_exposure(host: str, *, tls: bool, insecure: bool) -> None:
    """ServeError unless serving on ``host`` is safe: it is loopback, or TLS is on, or the
    operator said ``--insecure-no-tls`` (a proxy in front of it terminates TLS)."""
    if tls or insecure or is_loopback(host):
        return
    raise ServeError(
        f"refusing to serve plain HTTP on {host}, which other machines can reach: give "
        "--tls-cert and --tls-key (or [web] tls_cert and tls_key in legato.toml), or "
        "--insecure-no-tls when a proxy in front of it terminates TLS"
    )


def check_tls(tls: TlsFiles) -> None:
    """ServeError, in one line, when the certificate or key cannot be served with."""
    from legato.security.tls import TlsError

    try:
        tls.check()
    except TlsError as exc:
        raise ServeError(str(exc)) from None


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port), not yet listening.

    ServeError, in one line that says what to do, when the port is taken or the address
    is not one of this machine's.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot serve on host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = found[0]
    sock = socket.socket(family, kind, proto)
    # As uvicorn does: a port left in TIME_WAIT by a previous run may be bound again at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use; choose another with --port or LEGATO_PORT"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
