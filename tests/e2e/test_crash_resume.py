"""SIGKILL the process driving a run, then resume it: nothing that finished runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.helpers import LEGATO, cli, make_project, marks, process_alive, wait_for

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


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", CODE)
    driver = subprocess.Popen(
        [LEGATO, "run", "crashy", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: (project / "slow1.pid").exists())
    worker_pid = int((project / "slow1.pid").read_text())
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(10)
    # The worker running the interrupted attempt does not outlive its driver.
    wait_for(lambda: not process_alive(worker_pid), timeout=10, what="worker exit")

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
    wait_for(lambda: (project / "slow1.pid").exists())
    driver.send_signal(signal.SIGKILL)
    driver.wait(10)
    resumed = cli("resume", project=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming run" in resumed.stdout
    again = cli("resume", project=project)
    assert "no run needs resuming" in again.stdout
