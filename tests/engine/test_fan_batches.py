"""A wide fan of plain tasks on the local process pool: tasks that became ready together go to
the workers in batches, as a map's elements do, with the same guarantees."""

from __future__ import annotations

import os
from pathlib import Path

from legato.domain.ids import run_folder
from legato.domain.states import RunState, TaskState
from tests.engine.test_driver import run
from tests.helpers import door

FAN = """
@task
def seed() -> int:
    return 3

@task
def times(x: int, k: int) -> int:
    if k % 97 == 5:
        print(f"task {k} speaks")
    return x * k

@task
def plus(x: int, k: int) -> int:
    return x + k

@task
def join(*xs: int) -> int:
    return sum(xs)

@pipeline
def fan():
    s = seed()
    parts = []
    for k in range(300):
        parts.append(times.named(f"times_{k}")(s, k))
        parts.append(plus.named(f"plus_{k}")(s, k))
    join(*parts)
"""


def test_a_wide_fan_of_different_tasks_gives_every_result(ws_factory) -> None:
    ws = ws_factory(FAN)
    r, tasks = run(ws, "fan")
    assert r.state == RunState.SUCCEEDED, r.error
    assert len(tasks) == 602
    assert all(t.state == TaskState.SUCCEEDED and t.attempt == 1 for t in tasks.values())
    assert door(ws).runs.output(r.id, "join") == sum(3 * k + 3 + k for k in range(300))
    assert door(ws).runs.output(r.id, "times_250") == 750
    # The tasks that printed have their own logs; a silent one has none to show.
    for k in (5, 102, 199, 296):
        assert door(ws).runs.logs(r.id, f"times_{k}")[0].text().strip() == f"task {k} speaks"
    assert door(ws).runs.logs(r.id, "times_6")[0].text() == ""
    # Small results share a few files: the fan ran in batches, not one attempt per message.
    folder = Path(ws.config.results_url) / run_folder(r.id)
    files = sum(len(names) for _, _, names in os.walk(folder))
    assert files < 100


def test_a_task_of_a_fan_that_kills_its_worker_fails_alone(ws_factory) -> None:
    ws = ws_factory("""
@task
def fragile(k: int) -> int:
    if k == 123:
        os._exit(3)
    return k

@pipeline
def crashes():
    for k in range(400):
        fragile.named(f"f_{k}")(k)
""")
    r, tasks = run(ws, "crashes")
    assert r.state == RunState.FAILED
    assert [k for k, t in tasks.items() if t.state == TaskState.FAILED] == ["f_123"]
    assert sum(t.state == TaskState.SUCCEEDED for t in tasks.values()) == 399
    # The tasks of its batch ran again, once, on their own; none counted as a failure.
    outcomes = [a.outcome for a in door(ws).runs.attempts(r.id, "f_123")]
    assert outcomes == ["interrupted", "crashed"]


def test_a_task_with_a_timeout_in_a_fan_is_timed_out_on_its_own(ws_factory) -> None:
    ws = ws_factory("""
@task
def quick(k: int) -> int:
    return k

@task(timeout=0.5)
def stuck() -> None:
    time.sleep(600)

@pipeline
def mixed():
    for k in range(200):
        quick.named(f"q_{k}")(k)
    stuck()
    for k in range(200, 400):
        quick.named(f"q_{k}")(k)
""")
    r, tasks = run(ws, "mixed")
    assert r.state == RunState.FAILED
    assert tasks["stuck"].state == TaskState.FAILED
    assert [a.outcome for a in door(ws).runs.attempts(r.id, "stuck")] == ["timeout"]
    assert sum(t.state == TaskState.SUCCEEDED for t in tasks.values()) == 400


def test_a_fan_of_slow_tasks_shows_running_only_what_runs(ws_factory) -> None:
    ws = ws_factory("""
@task
def slow(k: int) -> int:
    time.sleep(0.1)
    return k

@pipeline
def patient():
    for k in range(40):
        slow.named(f"s_{k}")(k)
""", workers=2)
    r, tasks = run(ws, "patient")
    assert r.state == RunState.SUCCEEDED, r.error
    # Never more tasks showed "running" at once than there are workers: none waited, shown
    # running, behind another in a batch.
    spans = [(t.started_at, t.finished_at) for t in tasks.values()]
    for start, _ in spans:
        assert start is not None
        assert sum(1 for s, f in spans if s is not None and f is not None and s <= start < f) <= 2


def test_logs_and_results_are_kept_by_day_not_all_at_one_root(ws_factory) -> None:
    ws = ws_factory(FAN)
    r, _ = run(ws, "fan")
    assert r.state == RunState.SUCCEEDED, r.error
    day = f"{r.created_at:%Y/%m/%d}"
    assert run_folder(r.id) == f"{day}/{r.id}"
    # The roots hold years: months of runs never pile up in one folder.
    for root in (Path(ws.config.logs_dir), Path(ws.config.results_url)):
        assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == [day[:4]]
        assert (root / day / r.id).is_dir()
    assert run_folder("r1") == "r1"  # an id not made by Legato keeps a folder at the root
