"""The one home for driving runs: a fleet claims no more queued runs than it can drive, so a
second scheduler on the same store finds the rest; a cancel nobody drives is settled here."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato.domain.states import RunState
from legato.services.actor import Actor
from legato.services.driving import Fleet, RunDriving
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import ONE_TASK, door, make_project

CODE = ONE_TASK


@pytest.fixture(params=BACKENDS)
def project(request: pytest.FixtureRequest, tmp_path: Path, store_url_for) -> Path:
    url = store_url_for(request.param)
    return make_project(tmp_path / "p", CODE, extra=f'\n[store]\nurl = "{url}"\n')


def _fleet(ws: Workspace, owner: str, max_runs: int) -> Fleet:
    fleet = Fleet(ws, Actor.scheduler(owner), owner=owner, max_runs=max_runs)
    fleet.start()
    return fleet


def test_a_saturated_fleet_claims_no_more_and_a_second_one_takes_the_rest(
    spaces: list[Workspace],
) -> None:
    first_ws, second_ws = spaces
    ids = [door(first_ws).runs.create_run("etl").id for _ in range(10)]
    first = _fleet(first_ws, "host:1:0:aa", max_runs=3)
    second = _fleet(second_ws, "host:2:0:bb", max_runs=4)
    try:
        now = first_ws.clock()
        first.start_queued(now)
        assert len(first.active) == 3 and first.free_slots() == 0
        first.start_queued(now)  # saturated: it takes nothing more
        leased = {i: first_ws.store.runs.get_run(i).lease_owner for i in ids}
        assert sorted(o for o in leased.values() if o) == ["host:1:0:aa"] * 3
        second.start_queued(second_ws.clock())
        assert len(second.active) == 4
        assert not first.active & second.active
        owners = [first_ws.store.runs.get_run(i).lease_owner for i in ids]
        assert owners.count("host:2:0:bb") == 4
        assert owners.count(None) == 3  # left for whoever has room next
        # The runs each fleet took reach their end there.
        finished: list[str] = []
        while len(finished) < 7:
            finished += [r.id for r in first.step(1.0) + second.step(1.0)]
        assert {first_ws.store.runs.get_run(i).state for i in finished} == {RunState.SUCCEEDED}
    finally:
        first.shutdown()
        second.shutdown()


def test_a_cancel_nobody_drives_is_settled_by_the_caller(spaces: list[Workspace]) -> None:
    ws = spaces[0]
    run = door(ws).runs.create_run("etl")
    done = RunDriving(ws).cancel(run.id)
    assert done.state == RunState.CANCELED
    assert ws.store.runs.get_run(run.id).state == RunState.CANCELED
    assert [r.state for r in ws.store.runs.get_task_runs(run.id)] == ["canceled"]
    assert ws.store.runs.get_attempts(run.id) == []  # no task was started to cancel it
