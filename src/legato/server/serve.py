"""Serving the app with uvicorn in a thread, so the caller keeps the main thread (and signals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


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
    app: Any, host: str, port: int, *, stop: threading.Event | None = None
) -> Served:
    """Start ``app`` on ``host``:``port`` (0: any free port) in a daemon thread; wait until it
    listens. RuntimeError if it cannot. ``stop`` ends the wait early when set.
    """
    import uvicorn

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
    thread = threading.Thread(target=server.run, name="web server", daemon=True)
    thread.start()
    waiting = stop or threading.Event()
    while not server.started and thread.is_alive():
        waiting.wait(0.01)
    if not server.started:
        raise RuntimeError(f"the web server could not listen on {host}:{port}")
    bound = server.servers[0].sockets[0].getsockname()
    return Served(server, thread, f"http://{host}:{bound[1]}")
