"""What the legato command prints for a run: task order, and machine-readable output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

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


SCRIPTED = """
from legato import pipeline, task
from legato.partitions import daily

@task
def hello(name: str) -> str:
    print(f"hello {name}")
    return name

@task
def boom(x: str) -> None:
    raise RuntimeError("broken")

@pipeline
def greet(name: str = "world"):
    hello(name)

@pipeline
def breaks():
    boom(hello("x"))

@pipeline(partitions=daily(start="2024-01-01", end="2024-01-04"))
def days():
    hello("d")
"""


def _json_of(done: subprocess.CompletedProcess[str]) -> Any:
    """The whole of stdout is one JSON document (nothing else is printed there)."""
    return json.loads(done.stdout)


def test_run_rerun_submit_backfill_and_logs_print_json_for_scripts(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SCRIPTED)

    ran = cli("run", "greet", "--param", "name=Ada", "--json", project=project)
    assert ran.returncode == 0, ran.stderr
    shown = _json_of(ran)
    run_id = shown["run"]["id"]
    assert (shown["run"]["pipeline"], shown["run"]["state"]) == ("greet", "succeeded")
    assert shown["run"]["params"] == {"name": "Ada"}
    assert [t["task_key"] for t in shown["tasks"]] == ["hello"]
    assert shown == _json_of(cli("show", run_id, "--json", project=project))

    failed = cli("run", "breaks", "--json", project=project)
    assert failed.returncode == 1
    broken = _json_of(failed)
    assert broken["run"]["state"] == "failed"
    again = cli("rerun", broken["run"]["id"], "--from-failure", "--json", project=project)
    assert again.returncode == 1
    rerun = _json_of(again)
    assert rerun["run"]["parent_run_id"] == broken["run"]["id"]
    assert {t["task_key"]: t["reused_from"] for t in rerun["tasks"]}["hello"]

    queued = _json_of(cli("submit", "greet", "--json", project=project))
    assert queued["state"] == "queued"
    listed = _json_of(cli("runs", "--json", project=project))
    assert queued == listed[0]

    made = cli(
        "backfill", "days", "--from", "2024-01-01", "--to", "2024-01-03", "--json", project=project
    )
    assert made.returncode == 0, made.stderr
    backfill = _json_of(made)
    # A range stays a range: its keys one by one are a page of `backfills show --keys`.
    assert backfill["backfill"]["ranges"] == [
        {"first": "2024-01-01", "last": "2024-01-03", "count": 3}
    ]
    assert backfill["backfill"]["keys"] == [] and backfill["total"] == 3
    assert backfill == _json_of(cli("backfills", "--json", project=project))[0]
    bf_id = backfill["backfill"]["id"]
    keys = _json_of(cli("backfills", "show", bf_id, "--keys", "--offset", "2", "--json",
                        project=project))  # fmt: skip
    assert keys == {"keys": [{"key": "2024-01-03", "state": "not started", "run_id": None}],
                    "total": 3, "next_offset": None}  # fmt: skip
    shown = cli("backfills", "show", bf_id, project=project)
    assert shown.returncode == 0 and "2024-01-01" in shown.stdout and "2024-01-03" in shown.stdout

    logs = _json_of(cli("logs", run_id, "--json", project=project))
    assert [(e["task_key"], e["attempt"], e["outcome"]) for e in logs] == [
        ("hello", 1, "succeeded")
    ]
    assert "hello Ada" in logs[0]["text"]

    # A usage error is one line on stderr, and stdout stays empty.
    bad = cli("run", "nope", "--json", project=project)
    assert bad.returncode == 2 and bad.stdout == "" and "no pipeline named" in bad.stderr
