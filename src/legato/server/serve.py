"""Serving the app with uvicorn in a thread, so the caller keeps the main thread (and signals)."""

from __future__ import annotations

import errno
import socket
import threading
from dataclasses import dataclass
from typing import Any


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
) -> Served:
    """Start ``app`` on ``host``:``port`` (0: any free port) in a daemon thread; wait until it
    listens. ServeError if the address cannot be bound (a port in use, say), RuntimeError if
    the server fails after that. ``stop`` ends the wait early when set. ``sock``, from
    :func:`bind_socket`, is the address already bound (``host`` and ``port`` then only name it).
    """
    import uvicorn

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
    return Served(server, thread, f"http://{host}:{bound[1]}")


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
