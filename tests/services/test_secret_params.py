"""A pipeline param typed ``Secret``: sealed for its run before it is stored, ``****`` in every
view of the run, opened only in the worker running the task, masked in its log and error."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.domain.refs import ResultRef
from legato.results.result_store import ResultStore
from legato.services.door import Door
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import cli, make_project, signed_client
from tests.helpers import door as door_of

VALUE = "tok-9f8e7d6c5b4a-secret"
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()

CODE = """
import hashlib
from pathlib import Path
from legato import Secret, pipeline, task

@task
def use(ctx, token: Secret) -> str:
    print("token:", token, "as repr:", repr(token), "in ctx:", ctx.params["token"])
    if ctx.params["fail"] and not (Path(__file__).parent / "fixed").exists():
        raise PermissionError(f"{token} was refused")
    return hashlib.sha256(token.encode()).hexdigest()

@pipeline
def call(token: Secret, fail: bool = False):
    use(token)

from legato.partitions import daily

@task
def use_daily(token: Secret) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

@pipeline(partitions=daily(start="2026-01-01"))
def daily_call(token: Secret):
    use_daily(token)
"""


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest, tmp_path: Path, store_url_for) -> Iterator[Workspace]:
    url = store_url_for(request.param)
    root = make_project(tmp_path / "p", CODE, extra=f'\n[store]\nurl = "{url}"\n')
    with Workspace(root) as made:
        yield made


@pytest.fixture
def door(ws: Workspace) -> Door:
    return door_of(ws)


def _result(ws: Workspace, door: Door, run_id: str) -> object:
    (row,) = door.runs.task_runs(run_id)
    assert row.result_format is not None
    return ResultStore(ws.config.results_url).get(ResultRef(row.result_uri, row.result_format))


def test_a_secret_param_reaches_the_task_and_is_shown_nowhere(ws: Workspace, door: Door) -> None:
    run = door.runs.run_pipeline("call", {"token": VALUE, "fail": True})
    assert run.params == {"token": "****", "fail": True}
    (attempt,) = door.runs.attempts(run.id)
    assert attempt.error == "PermissionError: **** was refused"
    assert VALUE not in (attempt.traceback or "")
    log = ws.log_path(run.id, "use", 1).read_text()
    assert "token: **** as repr: Secret('****') in ctx: ****" in log and VALUE not in log
    # A re-run takes the same value, sealed again for itself.
    (ws.config.root / "fixed").touch()
    again = door.runs.execute(door.runs.rerun(run.id).id)
    assert again.params == {"token": "****", "fail": True}
    assert _result(ws, door, again.id) == DIGEST
    with signed_client(ws) as client:
        for path in (f"/api/v1/runs/{run.id}", f"/api/v1/runs/{again.id}", "/api/v1/runs"):
            shown = client.get(path)
            assert shown.status_code == 200 and VALUE not in shown.text
        assert '"token":"****"' in client.get(f"/api/v1/runs/{run.id}").text.replace(" ", "")
        page = client.get(f"/runs/{run.id}")
        assert page.status_code == 200 and VALUE not in page.text
    # Not in the store: the run's params hold ****, the sealed value is bound to the run.
    url = ws.config.database_url
    if url.startswith("sqlite"):
        db = Path(url.removeprefix("sqlite:///"))
        assert not any(VALUE.encode() in p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert door.secrets.names() == []  # runs' sealed params are not among the secrets
    assert VALUE not in repr(door.audit.entries(limit=100))  # nor in the launch's audit row


def test_a_secret_param_is_sealed_from_the_api_and_the_command_line(ws: Workspace) -> None:
    with signed_client(ws, "operator") as client:
        made = client.post("/api/v1/pipelines/call/runs", json={"params": {"token": VALUE}})
        assert made.status_code in (200, 201), made.text
        assert made.json()["params"] == {"token": "****", "fail": False}
        assert VALUE not in made.text
        wrong = client.post("/api/v1/pipelines/call/runs", json={"params": {"token": [VALUE]}})
        assert wrong.status_code == 422 and VALUE not in wrong.text
    root = ws.config.root
    ran = cli("run", "call", "--param", f"token={VALUE}", project=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert VALUE not in ran.stdout + ran.stderr
    runs = json.loads(cli("runs", "--json", project=root).stdout)
    shown = cli("show", runs[0]["id"], project=root)
    assert "****" in shown.stdout and VALUE not in shown.stdout
    assert VALUE not in json.dumps(runs)


def test_a_backfill_hands_its_secret_param_to_each_of_its_runs(ws: Workspace, door: Door) -> None:
    from legato.scheduler.tick import Scheduler

    made = door.automation.create_backfill(
        "daily_call", keys=["2026-01-01", "2026-01-02"], params={"token": VALUE}
    )
    assert made.params == {"token": "****"}
    Scheduler(door.automation).tick(ws.clock())
    queued = [r for r in ws.store.queue.queued_runs() if r.backfill_id == made.id]
    assert len(queued) == 2 and all(r.params == {"token": "****"} for r in queued)
    for run in queued:
        assert door.runs.execute(run.id).state == "succeeded"
        assert _result(ws, door, run.id) == DIGEST
    rows = door.audit.entries(limit=50)
    assert rows and VALUE not in repr(rows)
