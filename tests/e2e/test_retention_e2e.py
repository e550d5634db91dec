"""A scheduler applies the project's retention policy in the background, while it goes on
scheduling: old runs go, the newest and the recent stay, and schedules keep firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from legato.clock import ManualClock
from legato.services.workspace import Workspace
from tests.helpers import Daemons, door, make_project, wait_for

CODE = """
from legato import pipeline, task
from legato.schedules import every

@task(in_process=True)
def work() -> int:
    return 1

@pipeline(schedule=every("1s"))
def etl():
    work()

@pipeline
def history():
    work()
"""


def test_a_scheduler_prunes_old_runs_while_it_schedules(tmp_path: Path, daemons: Daemons) -> None:
    project = make_project(tmp_path / "p", CODE, extra='\n[retention]\nruns = "30d"\n')
    clock = ManualClock(datetime.now(UTC) - timedelta(days=45))
    ws = Workspace(project, clock=clock)
    old = []
    try:
        for _ in range(120):
            old.append(door(ws).runs.run_pipeline("history", {}).id)
            clock.advance(60)
    finally:
        ws.close()
    scheduler = daemons.up(project, command="scheduler")
    scheduler.wait_output("pruned 119 runs older than 30 days", timeout=120)
    ws = Workspace(project)
    try:
        left = {r.id for r in ws.store.browse.list_runs(pipeline="history", limit=None)}
        assert left == {old[-1]}  # the pipeline's newest run stays, however old
        # The schedule kept firing: runs of etl are made and finish after the prune.
        before = len(ws.store.browse.list_runs(pipeline="etl", limit=None))
        wait_for(
            lambda: len(ws.store.browse.list_runs(pipeline="etl", state="succeeded", limit=None))
            > before,
            timeout=60,
            what="a scheduled run after the prune",
        )
    finally:
        ws.close()


def test_a_scheduler_prunes_old_results_but_not_runs(tmp_path: Path, daemons: Daemons) -> None:
    extra = '\n[retention]\nruns = "30d"\nresults = "7d"\n'
    project = make_project(tmp_path / "p", CODE, extra=extra)
    clock = ManualClock(datetime.now(UTC) - timedelta(days=10))
    with Workspace(project, clock=clock) as ws:
        old = []
        for _ in range(20):
            old.append(door(ws).runs.run_pipeline("history", {}).id)
            clock.advance(60)
    scheduler = daemons.up(project, command="scheduler")
    scheduler.wait_output("pruned the results of 19 runs older than 7 days", timeout=120)
    with Workspace(project) as ws:
        left = [r.id for r in ws.store.browse.list_runs(pipeline="history", limit=None)]
        assert sorted(left) == sorted(old)
        assert door(ws).runs.pruned(old[0]) == {"results"}
        assert door(ws).runs.pruned(old[-1]) == frozenset()
