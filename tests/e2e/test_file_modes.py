"""What a real run leaves on disk is readable by its owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import LEGATO, make_project

CODE = """
from legato import pipeline, task

@task
def extract() -> dict:
    print("secret-ish output")
    return {"rows": 3}

@task
def load(data: dict) -> int:
    return data["rows"]

@pipeline
def etl():
    load(extract())
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_logs_and_results_are_owner_only(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    # umask 0: anything created without an explicit mode would be world-writable.
    done = subprocess.run(
        [LEGATO, "run", "etl", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    state = project / ".legato"
    files = [p for p in state.rglob("*") if p.is_file()]
    folders = [state, *(p for p in state.rglob("*") if p.is_dir())]
    logs = [p for p in files if p.suffix == ".log" and p.parent.name != ".workers"]
    results = [p for p in files if (state / "results") in p.parents]
    assert {p.name for p in logs} == {"extract.1.log"}  # load printed nothing: no file
    assert len(results) >= 2 and (state / "legato.db") in files
    assert "secret-ish output" in next(p for p in logs if p.name == "extract.1.log").read_text()
    for path in files:
        assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"
    for path in folders:
        assert mode(path) == 0o700, f"{path}: {oct(mode(path))}"

    # SQLite's write-ahead log and shared memory, while the store is open.
    with Workspace(project) as ws:
        assert ws.store is not None
        for side in ("legato.db-wal", "legato.db-shm"):
            assert (state / side).exists(), side
            assert mode(state / side) == 0o600, side
