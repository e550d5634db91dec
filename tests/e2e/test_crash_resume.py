"""SIGKILL the process driving a run, then resume it: nothing that finished runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.helpers import LEGATO, cli, make_project, marks

CODE = """
import os, time
from pathlib import Path
from legato import Context, pipeline, task

HERE = Path(__file__).parent

def mark(name):
    with open(HERE / "marks.txt", "a") as fh:
        fh.write(name + "\\n")

@task
def first() -> int:
    mark("first")
    return 20

@task(retries=1)
def slow(ctx: Context, x: int) -> int:
    mark(f"slow{ctx.attempt}")
    (HERE / f"slow{ctx.attempt}.pid").write_text(str(os.getpid()))
    if ctx.attempt == 1:
        time.sleep(120)
    return x + 1

@task
def last(x: int) -> int:
    mark("last")
    return x * 2

@pipeline
def crashy():
    last(slow(first()))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _wait_for(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", CODE)
    driver = subprocess.Popen(
        [LEGATO, "run", "crashy", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(lambda: (project / "slow1.pid").exists())
    worker_pid = int((project / "slow1.pid").read_text())
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(10)
    # The worker running the interrupted attempt does not outlive its driver.
    _wait_for(lambda: not _alive(worker_pid), timeout=10)

    listed = json.loads(cli("runs", "--json", project=project).stdout)
    assert len(listed) == 1 and listed[0]["state"] == "running"
    run_id = listed[0]["id"]

    resumed = cli("resume", run_id, project=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert marks(project / "marks.txt") == ["first", "slow1", "slow2", "last"]

    shown = json.loads(cli("show", run_id, "--json", project=project).stdout)
    assert shown["run"]["state"] == "succeeded"
    outcomes = [(a["task_key"], a["number"], a["outcome"]) for a in shown["attempts"]]
    assert ("slow", 1, "interrupted") in outcomes
    assert ("slow", 2, "succeeded") in outcomes
    assert [a for a in outcomes if a[0] == "first"] == [("first", 1, "succeeded")]


def test_resume_without_run_id_finds_orphaned_runs(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", CODE)
    driver = subprocess.Popen(
        [LEGATO, "run", "crashy", "--project", str(project)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: (project / "slow1.pid").exists())
    driver.send_signal(signal.SIGKILL)
    driver.wait(10)
    resumed = cli("resume", project=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming run" in resumed.stdout
    again = cli("resume", project=project)
    assert "no run needs resuming" in again.stdout
