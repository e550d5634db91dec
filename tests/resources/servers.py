"""Servers the resource kinds' tests start: a local HTTP(S) server answering from a script,
and a self-signed certificate for it."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
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


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem) in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def serve_http(tls: tuple[Path, Path] | None = None) -> Iterator[Server]:
    """A ``Server`` on a free port of 127.0.0.1 (HTTPS with ``tls``: cert and key files),
    shut down on leaving."""
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

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that refuses the certificate is what some tests want

    httpd = Quiet(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    # serve_forever checks for shutdown at this interval: a short one ends tests sooner.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
