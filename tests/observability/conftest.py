"""Real receivers for the channels' tests: an HTTP server for webhooks, Slack and PagerDuty,
and an SMTP server (aiosmtpd) for email, each on 127.0.0.1 and stopped after the test."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from legato.observability.channels import Notice
from legato.security.tls import DevCerts, make_dev_certs

#: A run that failed, as the alerting service would describe it to a channel; its error line
#: holds the characters HTML and Slack give a meaning to.
FAILED_RUN = Notice(
    kind="trigger",
    rule="failures",
    condition="run_failed",
    title="Run failed: daily_sales 2026-12-05",
    dedup_key="failures:daily_sales:2026-12-05",
    at=datetime(2026, 12, 6, 3, 0, tzinfo=UTC),
    pipeline="daily_sales",
    run_id="r42",
    partition="2026-12-05",
    task="load_sales",
    error="KeyError: 'amount' <in row 3 & after>",
    url="https://legato.example/runs/r42",
)


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        # A short poll: shutting the server down waits for one.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [json.loads(body) for _, body in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


class MailServer:
    """An aiosmtpd SMTP server on 127.0.0.1 (any free port) that keeps each message it
    accepts, answers DATA with ``answer`` and refuses the recipients in ``refuse``. With
    ``password``, AUTH lets in any user name with that password, and keeps the names."""

    def __init__(self, password: str | None = None, **smtp: Any) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.logins: list[str] = []
        self.answer = "250 OK"
        self.refuse: dict[str, str] = {}
        outer = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in outer.refuse:
                    return outer.refuse[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if outer.answer.startswith("250"):
                    parsed = message_from_bytes(envelope.content, policy=policy.default)
                    assert isinstance(parsed, EmailMessage)
                    outer.messages.append((list(envelope.rcpt_tos), parsed))
                return outer.answer

        class AnyPort(Controller):
            # Port 0 lets the system choose; aiosmtpd's start-up probe needs the real one.
            def _trigger_server(self) -> None:
                assert self.server is not None
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        if password is not None:
            smtp["authenticator"] = self._checker(password)
        # A generous start-up deadline: the machine running the tests may be busy.
        self.controller = AnyPort(
            Handler(), hostname="127.0.0.1", port=0, ready_timeout=60, **smtp
        )
        self.controller.start()
        self.port: int = self.controller.port

    def _checker(self, password: str) -> Callable[..., AuthResult]:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.password == password.encode()
            if ok:
                self.logins.append(data.login.decode())
            # handled=False: aiosmtpd answers a refusal with 535 itself.
            return AuthResult(success=ok, handled=False)

        return check


@pytest.fixture
def certs(tmp_path: Path) -> DevCerts:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it."""
    return make_dev_certs(tmp_path / "tls", datetime.now(UTC))


@pytest.fixture
def server_tls(certs: DevCerts) -> ssl.SSLContext:
    """The SMTP server's side of TLS with the certificate of ``certs``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.server.cert), str(certs.server.key))
    return context


@pytest.fixture
def mail_server() -> Iterator[Callable[..., MailServer]]:
    """Starts MailServers with aiosmtpd's SMTP options; stops them after the test."""
    started: list[MailServer] = []

    def start(**smtp: Any) -> MailServer:
        started.append(MailServer(**smtp))
        return started[-1]

    yield start
    for server in started:
        server.controller.stop()
