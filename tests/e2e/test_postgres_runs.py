"""Whole runs on a PostgreSQL store: the same engine and CLI, LEGATO_DATABASE_URL set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.helpers import LEGATO, cli, make_project, marks, wait_for

CODE = """
import os, time
from pathlib import Path
from legato import Context, pipeline, task

HERE = Path(__file__).parent

def mark(name):
    with open(HERE / "marks.txt", "a") as fh:
        fh.write(name + "\\n")

@task(retries=1)
def extract(ctx: Context) -> list[int]:
    mark(f"extract{ctx.attempt}")
    if ctx.attempt == 1:
        raise ConnectionError("flaky source")
    return [1, 2, 3]

@task
def double(x: int) -> int:
    mark("double")
    return 2 * x

@task
def total(xs: list[int]) -> int:
    mark("total")
    if not (HERE / "fixed").exists():
        raise RuntimeError("not yet")
    return sum(xs)

@task(retries=1)
def slow(ctx: Context, n: int) -> int:
    mark(f"slow{ctx.attempt}")
    (HERE / "slow.started").touch()
    if ctx.attempt == 1:
        time.sleep(120)
    return n

@pipeline
def sums():
    total(double.map(extract()))

@pipeline
def crashy():
    slow(total(double.map(extract())))
"""


def test_run_retry_map_and_rerun_on_postgres(tmp_path: Path, pg_url: str) -> None:
    project = make_project(tmp_path / "proj", CODE)
    env = {"LEGATO_DATABASE_URL": pg_url}
    first = cli("run", "sums", project=project, env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert not (project / ".legato" / "legato.db").exists()  # nothing went to SQLite
    runs = json.loads(cli("runs", "--json", project=project, env=env).stdout)
    assert [r["state"] for r in runs] == ["failed"]
    (project / "fixed").touch()
    again = cli("rerun", runs[0]["id"], "--from-failure", project=project, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert marks(project / "marks.txt") == [
        "extract1", "extract2", "double", "double", "double", "total", "total"]
    shown = json.loads(cli("show", runs[0]["id"], "--json", project=project, env=env).stdout)
    assert [a["outcome"] for a in shown["attempts"] if a["task_key"] == "extract"] == [
        "failed", "succeeded"]


def test_sigkill_and_resume_on_postgres(tmp_path: Path, pg_url: str) -> None:
    project = make_project(tmp_path / "proj", CODE)
    (project / "fixed").touch()
    env = {**os.environ, "LEGATO_DATABASE_URL": pg_url}
    driver = subprocess.Popen([LEGATO, "run", "crashy", "--project", str(project)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (project / "slow.started").exists(), timeout=60, what="slow task start")
    driver.send_signal(signal.SIGKILL)
    driver.wait(10)
    resumed = cli("resume", project=project, env={"LEGATO_DATABASE_URL": pg_url})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    done = marks(project / "marks.txt")
    assert done.count("total") == 1 and done.count("double") == 3
    assert done[-2:] == ["slow1", "slow2"]
