"""Many queued one-task runs drained by `legato scheduler` processes: every run ends, each
task runs once, on SQLite (one scheduler takes the seat, the other is refused) and on
PostgreSQL (two share the queue). Issue 17: the scheduler claims queued runs in batches and
writes the steps of several runs in one transaction; none of that may run a task twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.helpers import DaemonProcess, Daemons, door, make_project, wait_for

RUNS = 200

# Each execution of the task that got to its end appends a line with its run id: a run whose
# task ran twice has two lines.
CODE = """
import os
from legato import pipeline, task

LOG = {log!r}

@task
def touch(ctx) -> int:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (ctx.run_id + "\\n").encode())
    finally:
        os.close(fd)
    return 1

@pipeline
def one():
    touch()
"""


def _drained(ws: Workspace) -> bool:
    runs = ws.store.runs
    return not runs.runs_in_state(RunState.QUEUED, limit=1) and not runs.runs_in_state(
        RunState.RUNNING, limit=1
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_hundred_queued_runs_each_run_once(
    tmp_path: Path, daemons: Daemons, backend: str, request: pytest.FixtureRequest
) -> None:
    log = tmp_path / "executions.log"
    extra = ""
    if backend == "postgresql":
        extra = f'\n[store]\nurl = "{request.getfixturevalue("pg_url")}"\n'
    project = make_project(
        tmp_path / "proj", CODE.format(log=str(log)), extra=extra, lease_seconds=15
    )
    first = daemons.up(project, command="scheduler")
    first.wait_output("Ctrl-C stops", timeout=60)
    second = daemons.up(project, command="scheduler")
    schedulers: list[DaemonProcess] = [first]
    if backend == "sqlite":
        # SQLite has one scheduler seat: the second says so and leaves; the first drains.
        assert second.proc.wait(60) != 0
        assert "another scheduler already drives the runs" in second.output()
    else:
        second.wait_output("Ctrl-C stops", timeout=60)
        schedulers.append(second)

    # Queued while both are up (as `legato submit` does): they find them by themselves.
    ws = Workspace(project)
    try:
        runs = door(ws).runs
        ids = [runs.create_run("one").id for _ in range(RUNS)]
        wait_for(lambda: _drained(ws), timeout=240, what=f"{RUNS} runs finished")
        got = [ws.store.runs.get_run(i) for i in ids]
        attempts = Counter(a.run_id for i in ids for a in ws.store.runs.get_attempts(i))
    finally:
        ws.close()

    assert Counter(r.state for r in got) == Counter({RunState.SUCCEEDED: RUNS})
    # Every run's task ran to its end exactly once, and it was tried once.
    executed = Counter(log.read_text().split())
    assert executed == Counter(dict.fromkeys(ids, 1))
    assert attempts == Counter(dict.fromkeys(ids, 1))
    for daemon in schedulers:
        assert daemon.proc.poll() is None, daemon.output()
