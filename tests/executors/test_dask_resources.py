"""On Dask, a resource is opened once per Dask worker process, reused by the attempts it runs,
and closed when the worker closes (the project's worker plugin tears it down); a secret in
its settings is read there and masked in the attempts' logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import door, make_project
from tests.resources.kinds import SOURCE, closed, opened

pytest.importorskip("distributed", reason='needs the dask extra: pip install "legato[dask]"')
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

FLOWS = """
import json
import os

from legato import pipeline, task

@task
def first(marks) -> int:
    return marks.pid

@task
def second(ctx, a: int) -> int:
    print("password:", ctx.resources.marks.password, flush=True)
    return ctx.resources.marks.pid

@task
def last(a: int, b: int, marks) -> None:
    (marks.folder / "pids.json").write_text(json.dumps([a, b, marks.pid, os.getpid()]))

@pipeline
def uses():
    a = first()
    last(a, second(a))
"""


def test_a_dask_worker_opens_a_resource_once_and_closes_it_with_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    resources = (
        f'\n[resources.marks]\nkind = "tally:Tally"\nfolder = "{marks}"\n'
        'password = "${secret:marks_pw}"\n'
    )
    root = make_project(tmp_path / "p", FLOWS, workers=1, extra='kind = "dask"\n' + resources)
    (root / "tally.py").write_text(SOURCE, encoding="utf-8")
    with Workspace(root) as ws:
        services = door(ws)
        services.secrets.set("marks_pw", "dask-marks-pw")
        for _ in range(2):
            run = services.runs.run_pipeline("uses")
            assert run.state.value == "succeeded"
            # Read on the worker through the audited path, masked in the log of both runs.
            text = ws.log_path(run.id, "second", 1).read_text()
            assert "password: ****" in text and "dask-marks-pw" not in text
        (attempt,) = services.runs.attempts(run.id, "first")
        assert attempt.worker is not None and attempt.worker.startswith("tcp://")
        pids = json.loads((marks / "pids.json").read_text())
        worker = pids[-1]
        assert pids == [worker] * 4
        assert opened(marks) == [f"opened-{worker}-1"]
        assert closed(marks) == []
    assert closed(marks) == [f"closed-{worker}"]
