"""Large maps on the local process pool: elements go to the workers in batches."""

from __future__ import annotations

import os
from pathlib import Path

from legato.domain.ids import run_folder
from legato.domain.states import RunState, TaskState
from tests.engine.test_driver import SUMS, run
from tests.helpers import door


def test_a_large_map_gives_every_result_in_order(ws_factory) -> None:
    ws = ws_factory(SUMS)
    n = 6000
    r, tasks = run(ws, "sums", n=n, offset=0)
    assert r.state == RunState.SUCCEEDED, r.error
    elements = [t for k, t in tasks.items() if k.startswith("square[")]
    assert len(elements) == n
    assert all(t.state == TaskState.SUCCEEDED and t.attempt == 1 for t in elements)
    assert door(ws).runs.output(r.id, "total") == sum(i * i for i in range(n))
    assert door(ws).runs.output(r.id, "square[4321]") == 4321 * 4321
    # The reducer saw every square, in the order of the elements.
    said = door(ws).runs.logs(r.id, "total")[0].text()
    assert f"total of {[i * i for i in range(n)]}" in said
    # The squares share a few files; the list mapped over is one.
    folder = Path(ws.config.results_url) / run_folder(r.id)
    files = sum(len(names) for _, _, names in os.walk(folder))
    assert files < 100
    # Each element has its attempt, however it ran.
    assert len(door(ws).runs.attempts(r.id, "square[17]")) == 1


def test_elements_that_print_keep_their_own_logs(ws_factory) -> None:
    ws = ws_factory("""
@task
def numbers() -> list[int]:
    return list(range(400))

@task
def shout(x: int) -> int:
    if x % 100 == 7:
        print(f"element {x} speaks")
        logging.getLogger("shout").warning("and logs %d", x)
    return x

@pipeline
def loud():
    shout.map(numbers())
""")
    r, _ = run(ws, "loud")
    assert r.state == RunState.SUCCEEDED, r.error
    for x in (7, 107, 207, 307):
        text = door(ws).runs.logs(r.id, f"shout[{x}]")[0].text()
        assert f"element {x} speaks" in text and f"and logs {x}" in text
        assert "speaks" not in text.replace(f"element {x} speaks", "")  # its output alone
    assert door(ws).runs.logs(r.id, "shout[8]")[0].text() == ""


def test_an_element_that_kills_its_worker_fails_alone(ws_factory) -> None:
    ws = ws_factory("""
@task
def numbers() -> list[int]:
    return list(range(600))

@task
def fragile(x: int) -> int:
    if x == 123:
        os._exit(3)
    return x

@pipeline
def crashes():
    fragile.map(numbers())
""")
    r, tasks = run(ws, "crashes")
    assert r.state == RunState.FAILED
    failed = [k for k, t in tasks.items() if t.state == TaskState.FAILED]
    assert failed == ["fragile", "fragile[123]"]
    assert "exit" in (tasks["fragile[123]"].error or "")
    others = [t for k, t in tasks.items() if k.startswith("fragile[") and k != "fragile[123]"]
    assert len(others) == 599 and all(t.state == TaskState.SUCCEEDED for t in others)
    # The elements of its batch ran again, once, on their own; none counted as a failure.
    outcomes = [a.outcome for a in door(ws).runs.attempts(r.id, "fragile[123]")]
    assert outcomes == ["interrupted", "crashed"]
