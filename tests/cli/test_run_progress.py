"""What `legato run` prints while a task waits to be tried again."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli, make_project

CODE = """
from pathlib import Path
from legato import pipeline, task
from legato.definitions.retry import when

HERE = Path(__file__).parent

def db_up() -> bool:
    looks = HERE / "looks.txt"
    with open(looks, "a") as fh:
        fh.write("look\\n")
    return looks.read_text().split().count("look") >= 5  # the fifth look finds it up

@task(retries=1, retry_when=when(db_up, interval=0.05, backoff=1))
def fetch_json() -> int:
    if not (HERE / "looks.txt").exists() or len((HERE / "looks.txt").read_text().split()) < 5:
        raise ConnectionError("db down")
    return 1

@pipeline
def p():
    fetch_json()
"""


def test_a_condition_retry_is_one_line_that_names_the_condition(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    done = cli("run", "p", project=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "looks.txt").read_text().split().count("look") == 5
    waiting = [line for line in done.stdout.splitlines() if "up_for_retry" in line]
    assert len(waiting) == 1, done.stdout
    assert "fetch_json" in waiting[0]
    assert "ConnectionError: db down" in waiting[0]
    assert waiting[0].endswith("ConnectionError: db down; attempt 2 waits for condition db_up")
    assert "succeeded" in done.stdout.splitlines()[-1]


def test_a_retry_on_time_alone_is_one_line_per_failed_attempt(tmp_path: Path) -> None:
    code = """
from legato import pipeline, task

@task(retries=2, retry_delay=0.05)
def flaky() -> int:
    raise ValueError("no")

@pipeline
def p():
    flaky()
"""
    project = make_project(tmp_path / "proj", code, workers=1)
    done = cli("run", "p", project=project)
    assert done.returncode == 1, done.stdout + done.stderr
    waiting = [line for line in done.stdout.splitlines() if "up_for_retry" in line]
    assert len(waiting) == 2, done.stdout
    assert all(line.endswith("ValueError: no") for line in waiting), waiting
