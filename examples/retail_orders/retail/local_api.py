"""The example's own HTTP API on 127.0.0.1, and the resource kind that serves it.

A real shop reads exchange rates from a rates provider and pushes its daily summary to a
webhook of some other system. So that the example runs on a fresh clone with nothing else
started, it serves both itself: a resource of the kind ``retail.local_api:LocalApi`` starts
an HTTP server on a free port of 127.0.0.1 when a worker opens it, and hands the task an
``http`` resource's client (retries, rate limit, auth) whose base URL is that server. The
server stops when the worker closes its resources.

    GET  /health                 {"ok": true}
    GET  /rates?start=&end=      the rates of ``retail.rates``, paged: ``page`` (from 1),
                                 ``per_page`` (10); an empty page ends them
    POST /hooks/daily-summary    a JSON body, recorded once per ``Idempotency-Key`` as a
                                 line of the ``received`` file (JSON lines)

With ``auth = { token = "..." }`` the server also answers only requests bearing that token,
as the provider would.
"""

from __future__ import annotations

import fcntl
import json
import threading
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from legato.resources.http import HttpResource
from legato.resources.kind import ResourceError
from retail.rates import DEFAULT_SEED, rates_between

if TYPE_CHECKING:
    import httpx

SUMMARY_HOOK = "/hooks/daily-summary"


class ApiServer(ThreadingHTTPServer):
    """The rates and webhook server, with what its handlers need."""

    daemon_threads = True

    def __init__(self, seed: int, received: Path | None, token: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seed = seed
        self.received = received
        self.token = token
        self._thread = threading.Thread(
            target=self.serve_forever, name="retail-local-api", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def record(self, key: str, body: Any) -> bool:
        """Append ``body`` to the received file unless ``key`` is there already; whether it
        was new. Locked across processes: every worker serves its own copy of the hook."""
        if self.received is None:
            raise LookupError("this server has no 'received' file to record hooks in")
        self.received.parent.mkdir(parents=True, exist_ok=True)
        with self.received.open("a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            if any(json.loads(line)["key"] == key for line in fh if line.strip()):
                return False
            line = {"key": key, "received_at": datetime.now(UTC).isoformat(), "body": body}
            fh.write(json.dumps(line, sort_keys=True) + "\n")
        return True


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the client's side logs what matters to a task."""

    def _answer(self, status: HTTPStatus, body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.server.token is None or (
            self.headers.get("Authorization") == f"Bearer {self.server.token}"
        ):
            return True
        self._answer(HTTPStatus.UNAUTHORIZED, {"error": "a valid bearer token is required"})
        return False

    def do_GET(self) -> None:  # the name http.server calls
        url = urlsplit(self.path)
        if url.path == "/health":
            self._answer(HTTPStatus.OK, {"ok": True})
        elif url.path == "/rates":
            if self._authorized():
                self._rates(parse_qs(url.query))
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path: {url.path}"})

    def _rates(self, query: dict[str, list[str]]) -> None:
        try:
            start = date.fromisoformat(query["start"][0])
            end = date.fromisoformat(query["end"][0])
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", ["10"])[0])
        except (KeyError, ValueError) as exc:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": f"bad query: {exc}"})
            return
        rates = rates_between(start, end, self.server.seed)
        first = (page - 1) * per_page
        self._answer(HTTPStatus.OK, {"base": "EUR", "rates": rates[first : first + per_page]})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != SUMMARY_HOOK:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such hook: {self.path}"})
            return
        if not self._authorized():
            return
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "an Idempotency-Key is required"})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        new = self.server.record(key, body)
        self._answer(HTTPStatus.CREATED if new else HTTPStatus.OK, {"recorded": new})


class LocalApi(HttpResource):
    """The ``http`` kind's settings, less ``base_url`` (the server's own), plus ``seed`` (of
    the rates) and ``received`` (the JSON lines file hooks are recorded in, relative to the
    project folder)."""

    kind = "retail_local_api"
    settings_keys: ClassVar[frozenset[str]] = (
        HttpResource.settings_keys - {"base_url"}
    ) | frozenset({"seed", "received"})

    def validate(self) -> None:
        super().validate()
        self.option("seed", int, None)
        self.option("received", str, None)
        self._server: ApiServer | None = None

    def open(self) -> httpx.Client:
        received = self.settings.get("received")
        token = (self.settings.get("auth") or {}).get("token")
        server = ApiServer(
            seed=self.settings.get("seed", DEFAULT_SEED),
            received=Path(self.project_path(received)) if received else None,
            token=token,
        ).start()
        self.settings = {**self.settings, "base_url": server.url}
        try:
            client = super().open()
        except BaseException:
            server.stop()
            raise
        self._server = server
        return client

    def check(self, client: httpx.Client) -> str:
        answer = client.get("/health")
        if answer.status_code != HTTPStatus.OK:
            raise ResourceError(f"resource {self.name!r}: /health answered {answer.status_code}")
        return f"serving on {client.base_url} (GET /health answered 200)"

    def close(self, client: httpx.Client) -> None:
        client.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
