"""Worker processes replaced after ``max_tasks_per_worker`` attempts or past
``max_worker_memory_mb``, and no task's working directory or environment reaching the next."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

HEAD = """
import os
from legato import pipeline, task
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[list[Workspace]]:
    opened: list[Workspace] = []
    yield opened
    for ws in opened:
        ws.close()


def _open(opened: list[Workspace], root: Path, code: str, extra: str) -> Workspace:
    ws = Workspace(make_project(root, HEAD + code, workers=1, extra=extra))
    opened.append(ws)
    return ws


def _pids(ws: Workspace, pipeline: str, n: int) -> list[int]:
    r = door(ws).runs.run_pipeline(pipeline, {})
    assert r.state == RunState.SUCCEEDED, r.error
    return [door(ws).runs.output(r.id, f"p_{k}") for k in range(n)]


CHAIN = """
@task
def pid(_prev: int | None) -> int:
    return os.getpid()

@pipeline
def chain():
    last = None
    for k in range(7):
        last = pid.named(f"p_{k}")(last)
"""


def test_a_worker_is_replaced_after_max_tasks_per_worker(tmp_path, workspace) -> None:
    ws = _open(workspace, tmp_path / "p", CHAIN, "max_tasks_per_worker = 3\n")
    pids = _pids(ws, "chain", 7)
    # One worker: attempts 1-3 on the first, 4-6 on its replacement, 7 on the next.
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]


def test_without_a_limit_one_worker_runs_every_attempt(tmp_path, workspace) -> None:
    ws = _open(workspace, tmp_path / "p", CHAIN, "")
    assert len(set(_pids(ws, "chain", 7))) == 1


LEAK = """
KEPT = []

@task
def leak(_prev: int | None) -> int:
    block = bytearray(50 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touched: resident, not just reserved
    KEPT.append(block)
    return os.getpid()

@pipeline
def leaky():
    last = None
    for k in range(8):
        last = leak.named(f"p_{k}")(last)
"""


def test_a_worker_leaking_memory_is_replaced_past_max_worker_memory_mb(
    tmp_path, workspace
) -> None:
    ws = _open(workspace, tmp_path / "p", LEAK, "max_worker_memory_mb = 120\n")
    per_worker = Counter(_pids(ws, "leaky", 8))
    # Each attempt adds 50 MB: a worker is replaced once it has grown by more than 120 MB,
    # after its third attempt (3, 3, 2), whatever size it started at.
    assert sorted(per_worker.values()) == [2, 3, 3], per_worker


MOVES = """
@task
def meddle(_prev: str | None, where: str) -> str:
    os.environ["LEGATO_TEST_LEAK"] = "set by a task"
    os.environ.pop("HOME", None)
    os.makedirs(where, exist_ok=True)
    os.chdir(where)
    return os.getcwd()

@task
def look(_prev: str | None) -> list:
    return [os.environ.get("LEGATO_TEST_LEAK"), "HOME" in os.environ, os.getcwd(), os.getpid()]

@pipeline
def moves(where: str):
    last = None
    for k in range(40):
        last = meddle.named(f"m_{k}")(last, where)
        last = look.named(f"l_{k}")(last)
"""

FAN_MOVES = """
@task
def meddle(where: str) -> int:
    os.environ["LEGATO_TEST_LEAK"] = "set by a task"
    os.makedirs(where, exist_ok=True)
    os.chdir(where)
    return 0

@task
def look() -> list:
    return [os.environ.get("LEGATO_TEST_LEAK"), True, os.getcwd(), os.getpid()]

@pipeline
def fanned(where: str):
    for k in range(300):
        meddle.named(f"m_{k}")(where)
        look.named(f"l_{k}")()
"""


@pytest.mark.parametrize("pipeline", ["moves", "fanned"])
def test_a_task_changing_the_environment_or_folder_does_not_affect_the_next(
    tmp_path, workspace, pipeline: str
) -> None:
    ws = _open(workspace, tmp_path / "p", MOVES if pipeline == "moves" else FAN_MOVES, "")
    where = str(tmp_path / "elsewhere")
    r = door(ws).runs.run_pipeline(pipeline, {"where": where})
    assert r.state == RunState.SUCCEEDED, r.error
    seen = [door(ws).runs.output(r.id, f"l_{k}") for k in range(40)]
    assert len({s[3] for s in seen}) == 1  # one worker ran them all (workers = 1)
    for leak, home, cwd, _ in seen:
        assert leak is None
        assert home
        assert cwd != where


LEAKY_LIBRARY = """
@task(max_calls_per_worker=2)
def leaky(_prev: int | None) -> int:
    return os.getpid()

@task
def plain(_prev: int | None) -> int:
    return os.getpid()

@pipeline
def mixed():
    last = None
    for k in range(5):
        last = leaky.named(f"p_{k}")(last)
    for k in range(5, 8):
        last = plain.named(f"p_{k}")(last)

@pipeline
def fanned():
    for k in range(6):
        leaky.named(f"p_{k}")(None)
"""


def test_a_tasks_own_max_calls_per_worker_replaces_the_worker(tmp_path, workspace) -> None:
    ws = _open(workspace, tmp_path / "p", LEAKY_LIBRARY, "")
    pids = _pids(ws, "mixed", 8)
    # One worker: two attempts of leaky each, then plain tasks on the worker after the last
    # leaky one (it ran only one attempt of leaky), without end.
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5] == pids[6] == pids[7]
    # A fan of it never goes to a worker in one batch: still two attempts per worker.
    fresh = _open(workspace, tmp_path / "p2", LEAKY_LIBRARY, "")
    fanned = Counter(_pids(fresh, "fanned", 6))
    assert sorted(fanned.values()) == [2, 2, 2]


def test_max_calls_per_worker_must_be_a_positive_whole_number(tmp_path) -> None:
    from legato.definitions.errors import DefinitionError
    from legato.definitions.task import task

    for wrong in (0, -1, 1.5, True):
        with pytest.raises(DefinitionError, match="max_calls_per_worker"):
            task(max_calls_per_worker=wrong)(lambda: None)  # type: ignore[arg-type]
