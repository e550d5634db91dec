"""Servers the resource kinds' tests start: a local HTTP server answering from a script."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    at: float  # the server's monotonic clock when the request arrived
    wall: float  # and its wall clock (time.time())


@dataclass
class Server:
    """A local HTTP server answering each path from a script of (status, headers) answers,
    then 200 with ``bodies[path]`` or the request echoed as JSON; it records every request.
    ``/slow`` answers once ``release`` is set; ``/redirect`` sends to ``/echo``."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    bodies: dict[str, Any] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        self.scripts[path].extend(answers)

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path.split("?")[0] == path]


@contextmanager
def serve_http() -> Iterator[Server]:
    """A ``Server`` on a free port of 127.0.0.1, shut down on leaving."""
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            with state.lock:
                state.hits.append(
                    Hit(
                        self.command,
                        self.path,
                        dict(self.headers.items()),
                        time.monotonic(),
                        time.time(),
                    )
                )
                scripted = state.scripts[path].pop(0) if state.scripts[path] else None
            if path == "/slow":
                state.release.wait(60)
            status, headers = scripted or (200, {})
            if path == "/redirect" and scripted is None:
                status, headers = 302, {"Location": "/echo"}
            echo = {"path": self.path, "headers": dict(self.headers.items()), "body": body.decode()}
            payload = json.dumps(state.bodies.get(path, echo)).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # serve_forever checks for shutdown at this interval: a short one ends tests sooner.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
