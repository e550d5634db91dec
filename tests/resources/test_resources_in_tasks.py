"""Tasks get resources by parameter name, by ``Annotated[..., legato.resource(NAME)]`` and as
``ctx.resources.NAME``: opened once per worker process, reused by the tasks it runs, closed
when the worker ends. The kind writes a file when it opens and closes (tests/resources/kinds.py)
so the test sees which process did what."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from legato.resources.opened import overriding
from legato.services.workspace import Workspace
from tests.helpers import door, make_project
from tests.resources.kinds import SOURCE, closed, opened

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PASSWORD = "tally-s3cret-pw"

FLOWS = """
import json
import os
from typing import Annotated

import legato
from legato import pipeline, task

@task(retries=2)
def by_name(marks) -> int:
    return marks.pid

@task
def by_annotation(n: int, store: Annotated[object, legato.resource("marks")]) -> int:
    return store.pid

@task
def by_context(ctx, n: int) -> int:
    client = ctx.resources.marks
    assert ctx.resources["marks"] is client
    print("password:", client.password, flush=True)
    return client.pid

@task
def gather(a: int, b: int, c: int, marks) -> None:
    (marks.folder / "pids.json").write_text(json.dumps([a, b, c, marks.pid, os.getpid()]))

@pipeline
def uses():
    a = by_name()
    gather(a, by_annotation(a), by_context(a))
"""

RESOURCES = """
[resources.marks]
kind = "tally:Tally"
folder = "${env:TALLY_DIR}"
password = "${secret:tally_pw}"
"""


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Path:
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("TALLY_DIR", str(marks))
    root = make_project(tmp_path / "p", FLOWS, workers=1, extra=extra + RESOURCES)
    (root / "tally.py").write_text(SOURCE, encoding="utf-8")
    return root


def _run_twice(root: Path, marks: Path) -> tuple[Workspace, list[int]]:
    ws = Workspace(root)
    services = door(ws)
    services.secrets.set("tally_pw", PASSWORD)
    for _ in range(2):
        run = services.runs.run_pipeline("uses")
        assert run.state.value == "succeeded", services.runs.attempts(run.id, "gather")
        text = ws.log_path(run.id, "by_context", 1).read_text()
        # The second run's attempt did not read the secret (the client was open already):
        # its log is masked all the same.
        assert "password: ****" in text and PASSWORD not in text
    pids: list[int] = json.loads((marks / "pids.json").read_text())
    return ws, pids


def test_process_mode_opens_once_per_worker_and_closes_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    ws, pids = _run_twice(_project(tmp_path, monkeypatch), marks)
    worker = pids[-1]
    assert pids == [worker] * 5  # by name, by annotation, by context: one client, one worker
    assert opened(marks) == [f"opened-{worker}-1"]  # two runs, four tasks each: one open
    assert closed(marks) == []
    ws.close()
    assert closed(marks) == [f"closed-{worker}"]
    reads = door(Workspace(tmp_path / "p")).audit.entries(action="secrets.read")
    assert [r.target for r in reads] == ["tally_pw"]  # read once, by the attempt that opened
    assert reads[0].actor.startswith("run:")


def test_thread_mode_opens_once_in_the_driver_and_closes_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    root = _project(tmp_path, monkeypatch, extra='mode = "thread"\n')
    ws, pids = _run_twice(root, marks)
    assert pids == [os.getpid()] * 5
    assert opened(marks) == [f"opened-{os.getpid()}-1"]
    ws.close()
    assert closed(marks) == [f"closed-{os.getpid()}"]


def test_a_reference_that_cannot_be_resolved_fails_the_attempt_without_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, monkeypatch)
    monkeypatch.delenv("TALLY_DIR")
    with Workspace(root) as ws:
        services = door(ws)
        services.secrets.set("tally_pw", PASSWORD)
        run = services.runs.run_pipeline("uses")
        assert run.state.value == "failed"
        (attempt,) = services.runs.attempts(run.id, "by_name")  # retries=2: not retried
        assert attempt.error == (
            "cannot open resource 'marks' for task 'by_name': ResourceError: resource 'marks': "
            "setting 'folder': environment variable 'TALLY_DIR' is not set"
        )
    assert opened(tmp_path / "marks") == []


def test_an_in_process_run_hands_given_objects_in_place_of_resources(tmp_path: Path) -> None:
    """What an in-process test run does (legato.testing): objects given for resources reach
    the tasks in thread mode, declared in legato.toml or not, and are never closed."""
    class Given:
        def __init__(self, folder: Path) -> None:
            self.folder, self.pid, self.password = folder, -1, "not-secret"

    folder = tmp_path / "given"
    folder.mkdir()
    root = make_project(tmp_path / "p", FLOWS, workers=1, extra='mode = "thread"\n')
    with overriding({"marks": Given(folder)}), Workspace(root) as ws:
        run = door(ws).runs.run_pipeline("uses")
        assert run.state.value == "succeeded"
    assert json.loads((folder / "pids.json").read_text()) == [-1, -1, -1, -1, os.getpid()]
    with Workspace(root) as ws:  # without them, the tasks ask for what is not declared
        assert "uses" not in ws.project.pipelines


POOLED = """
from legato import pipeline, task

@task
def write_a(marks) -> None:
    pass

@task
def write_b(marks) -> None:
    pass

@pipeline
def writes():
    write_a()
    write_b()
"""


def test_tasks_using_a_resource_with_a_pool_take_its_slots(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    extra = (
        f'\n[pools]\nwarehouse = 1\n\n[resources.marks]\nkind = "tally:Tally"\n'
        f'folder = "{marks}"\npool = "warehouse"\n'
    )
    root = make_project(tmp_path / "p", POOLED, workers=2, extra=extra)
    (root / "tally.py").write_text(SOURCE, encoding="utf-8")
    with Workspace(root) as ws:
        run = door(ws).runs.run_pipeline("writes")
        assert run.state.value == "succeeded"
        spans = sorted((t.started_at, t.finished_at) for t in ws.store.runs.get_task_runs(run.id))
        events = ws.store.runs.get_events(run.id)
    # Both were ready at once with two workers free: the pool's one slot kept them apart.
    first_end, second_start = spans[0][1], spans[1][0]
    assert first_end is not None and second_start is not None and first_end <= second_start
    assert any(e.kind == "pool" and "pool 'warehouse'" in (e.message or "") for e in events)
