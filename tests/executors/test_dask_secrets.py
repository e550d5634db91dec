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
import pathlib
import time

from legato import pipeline, task

@task
def leaky(ctx) -> None:
    value = ctx.secrets["api_token"]
    print("printed:", value, flush=True)
    ctx.log.info("logged: %s", value)
    # Wait until the driver has written the streamed lines to the attempt's log: the worker
    # masks them only when the attempt ends, after they were streamed.
    logs = pathlib.Path(__file__).parent / ".legato" / "logs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        "logged: " in p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()
    ):
        time.sleep(0.05)
    raise RuntimeError(f"refused {value}")

@pipeline
def leak():
    leaky()
"""


def test_a_task_on_a_dask_worker_reads_a_secret_masked_even_once_streamed(tmp_path: Path) -> None:
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
