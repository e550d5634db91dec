"""Frames travel between tasks of a real run exactly: `legato run`, then `legato show`.

The run goes through the installed command with its worker processes, so the frame is
written by one process and read by another, as in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli, make_project

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

FLOWS = """
import pandas as pd
from legato import pipeline, task


@task
def make():
    return pd.DataFrame({"d": [{"k": 1}, {"k": 2}, {}, {"k": 4}]})


@task
def check(df):
    pd.testing.assert_frame_equal(df, make.fn())


@pipeline
def frames():
    check(make())


@task
def numbers():
    return pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", None]})


@task
def total(df):
    assert int(df["n"].sum()) == 6


@pipeline
def plain():
    total(numbers())


@task(result_format="parquet", retries=3)
def make_strict():
    return make.fn()


@pipeline
def strict():
    check(make_strict())
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p", FLOWS)


def _show(project: Path, pipeline: str) -> dict:
    runs = json.loads(cli("runs", "--json", project=project).stdout)
    run_id = next(r["id"] for r in runs if r["pipeline"] == pipeline)
    return json.loads(cli("show", run_id, "--json", project=project).stdout)


def test_a_column_of_dicts_reaches_the_downstream_task_unchanged(project: Path) -> None:
    ran = cli("run", "frames", project=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shown = _show(project, "frames")
    make = next(t for t in shown["tasks"] if t["task_key"] == "make")
    assert make["result_format"] == "pickle"
    assert make["result_note"] == "Parquet would change it: column 'd' holds dict values"
    text = cli("show", shown["run"]["id"], project=project).stdout
    assert "result stored as pickle: Parquet would change it: column 'd' holds dict" in text


def test_a_plain_frame_stays_parquet_without_a_note(project: Path) -> None:
    ran = cli("run", "plain", project=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    numbers = next(t for t in _show(project, "plain")["tasks"] if t["task_key"] == "numbers")
    assert numbers["result_format"] == "parquet-pandas"
    assert numbers["result_note"] is None


def test_asking_for_parquet_fails_the_attempt_at_once_naming_the_column(project: Path) -> None:
    ran = cli("run", "strict", project=project)
    assert ran.returncode == 1
    shown = _show(project, "strict")
    task = next(t for t in shown["tasks"] if t["task_key"] == "make_strict")
    assert task["state"] == "failed"
    assert task["attempt"] == 1  # retries=3, yet no retry: the value would not change
    assert task["error"] == (
        "result of task 'make_strict' cannot be stored: result_format='parquet' would change "
        "it: column 'd' holds dict values"
    )
