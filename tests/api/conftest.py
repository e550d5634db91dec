"""Fixtures of the API tests: a throwaway project on an empty store (SQLite or PostgreSQL),
its workspace on a manual clock, and a TestClient of the real app (``web=False``) over it,
signed in with an admin's API token.

``api`` is an :class:`Api` on the default project (``CODE``); ``make_api(code)`` makes more.
Every test that takes either runs once per backend.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from legato.clock import ManualClock
from legato.domain.records import RunRecord
from legato.server.app import create_app
from legato.services.actor import Actor
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import api_token, door, make_project

with warnings.catch_warnings():
    # starlette asks for httpx2 in its test client; httpx is what the project ships with.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
#: The manual clock of every workspace starts here (a Monday, 09:00 UTC).
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: The default project: a scheduled pipeline with a webhook, one whose middle task fails, and
#: a daily-partitioned one whose seven partitions (2026-02-23 .. 2026-03-01) all exist at T0.
CODE = """
from legato import Context, pipeline, task
from legato.partitions import daily
from legato.schedules import cron
from legato.triggers import on_success, webhook


@task(produces="greetings")
def hello(ctx: Context, n: int) -> int:
    print(f"hello n={n} partition={ctx.partition}")
    return n


@task
def boom(x: int) -> int:
    print("about to fail")
    raise ValueError("boom")


@task
def after(x: int) -> int:
    return x + 1


@pipeline(
    description="Greets twice a day.",
    tags=["demo"],
    schedule=[cron("0 3 * * *", name="nightly"), cron("30 * * * *", name="hourly")],
    triggers=[webhook("hook"), on_success("flaky", name="after-flaky")],
)
def greet(n: int = 1, label: str = "x", ratio: float | None = None):
    after(hello(n))


@pipeline
def flaky(n: int = 1):
    after(boom(hello(n)))


@pipeline(partitions=daily(start="2026-02-23", end="2026-03-02"))
def days():
    hello(1)
"""

DAYS = [f"2026-02-{d}" for d in range(23, 29)] + ["2026-03-01"]


@dataclass
class Api:
    """The app over one project, and shortcuts for what the tests do with it."""

    root: Path
    ws: Workspace
    client: TestClient
    clock: ManualClock
    heard: list[RunRecord | None] = field(default_factory=list)  # what on_run was told
    token: str = ""  # the admin API token the client sends
    webhook: str = ""  # greet's webhook token, once made

    def hook_token(self) -> str:
        """The token of greet's webhook ``hook``, made on first use (only its hash is kept)."""
        if not self.webhook:
            self.webhook = door(self.ws).automation.webhook_token("greet", "hook")
        return self.webhook

    @property
    def auth(self) -> dict[str, str]:
        """The client's own credential, for requests made around it (schemathesis)."""
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(API + path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is None:
            return self.client.post(API + path, **kw)
        return self.client.post(API + path, json=body, **kw)

    def launch(self, pipeline: str, **body: Any) -> dict[str, Any]:
        """POST /pipelines/{pipeline}/runs; the queued run."""
        r = self.post(f"/pipelines/{pipeline}/runs", body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def execute(self, run_id: str) -> dict[str, Any]:
        """Drive the run to its end in this process; GET /runs/{run_id} after."""
        door(self.ws).runs.execute(run_id)
        r = self.get(f"/runs/{run_id}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def run(self, pipeline: str, **body: Any) -> dict[str, Any]:
        """Launch through the API and execute; the run's detail."""
        return self.execute(self.launch(pipeline, **body)["id"])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_api(
    tmp_path: Path, backend: str, store_url_for: Callable[[str], str]
) -> Iterator[Callable[..., Api]]:
    """``make_api(code=CODE, toml="")``: a fresh project on an empty store of ``backend``,
    served; ``toml`` is more of its legato.toml."""
    opened: list[Api] = []

    def make(code: str = CODE, toml: str = "") -> Api:
        extra = toml
        if backend == "postgresql":
            extra += f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
        # With SQLite the store is the project's default: .legato/legato.db inside it.
        root = make_project(tmp_path / f"proj{len(opened) + 1}", code, extra=extra)
        clock = ManualClock(T0)
        ws = Workspace(root, clock=clock)
        heard: list[RunRecord | None] = []
        app = create_app(
            ws.door(Actor.local_user(), on_run=heard.append),
            web=False,
            allowed_hosts=["testserver"],
        )
        token = api_token(ws)
        client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        api = Api(root, ws, client, clock, heard, token)
        opened.append(api)
        return api

    yield make
    for api in opened:
        api.client.close()
        api.ws.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The default project (``CODE``) served on a fresh store."""
    return make_api()


def sse(text: str) -> list[dict[str, Any]]:
    """Server-sent events as dicts: ``event``, ``id`` (or None) and ``data`` (parsed JSON)."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            out.append(
                {
                    "event": fields.get("event", "message"),
                    "id": fields.get("id"),
                    "data": json.loads(fields["data"]),
                }
            )
    return out
