"""What the legato command prints for a run: task order, and machine-readable output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project

ORDERED = """
from legato import pipeline, task

@task
def zeta() -> list[int]:
    return [1, 2]

@task
def beta(x: int) -> int:
    return x

@task
def alpha(xs: list[int]) -> int:
    return sum(xs)

@task
def mid() -> int:
    return 0

@pipeline
def order():
    alpha(beta.map(zeta()))
    mid()
"""


def test_show_lists_tasks_in_graph_order(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ORDERED)
    ran = cli("run", "order", "--quiet", project=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run_id = json.loads(cli("runs", "--json", project=project).stdout)[0]["id"]
    # Topological, and declaration order among tasks that are ready together.
    graph_order = ["zeta", "beta", "beta[0]", "beta[1]", "alpha", "mid"]
    shown = json.loads(cli("show", run_id, "--json", project=project).stdout)
    assert [t["task_key"] for t in shown["tasks"]] == graph_order
    text = cli("show", run_id, project=project).stdout
    lines = [line.split()[0] for line in text.splitlines() if line.split()]
    assert [k for k in lines if k in graph_order] == graph_order
