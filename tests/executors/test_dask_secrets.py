"""A task on a Dask worker reads ``ctx.secrets`` there (the store's URL and the key file
reach it; the keys themselves never travel with the attempt) and its log and error are
masked like anywhere else."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import door, make_project

pytest.importorskip("distributed", reason='needs the dask extra: pip install "legato[dask]"')
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

VALUE = "dask-side-s3cret-value"

FLOWS = """
from legato import pipeline, task

@task
def leaky(ctx) -> None:
    value = ctx.secrets["api_token"]
    print("printed:", value)
    ctx.log.info("logged: %s", value)
    raise RuntimeError(f"refused {value}")

@pipeline
def leak():
    leaky()
"""


def test_a_task_on_a_dask_worker_reads_a_secret_masked(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", FLOWS, workers=1, extra='kind = "dask"\n')
    with Workspace(root) as ws:
        services = door(ws)
        services.secrets.set("api_token", VALUE)
        run = services.runs.run_pipeline("leak")
        (attempt,) = services.runs.attempts(run.id, "leaky")
        assert attempt.worker is not None and attempt.worker.startswith("tcp://")
        assert attempt.error == "RuntimeError: refused ****"
        assert VALUE not in (attempt.traceback or "")
        text = ws.log_path(run.id, "leaky", 1).read_text()
        assert "printed: ****" in text and "logged: ****" in text and VALUE not in text
        (read,) = services.audit.entries(action="secrets.read")
        assert (read.actor, read.target) == (f"run:{run.id}", "api_token")
        assert read.source == attempt.worker
