"""Environments in the services: each run records the environment it was made in, a store
belongs to the environment that first used it, and a run of another environment is never
driven here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from legato.config import WrongEnvironment
from legato.domain.states import RunState
from legato.engine import plan
from legato.security.roles import BUILT_IN, Permissions
from legato.services.actor import Actor
from legato.services.driving import Fleet, OtherEnvironment, RunDriving
from legato.services.service_errors import Forbidden
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import ONE_TASK, door, make_project, timed_run

CODE = ONE_TASK + """
from legato.triggers import webhook

@pipeline(triggers=[webhook("hook")])
def hooked():
    work()
"""


@pytest.fixture(params=BACKENDS)
def project(request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable) -> Path:
    """Three environments: default and dev on stores of their own, `shared` on default's."""
    base, dev = store_url_for(request.param), store_url_for(request.param)
    toml = (
        f'\n[store]\nurl = "{base}"\n\n[env.dev.store]\nurl = "{dev}"\n\n'
        "[env.shared.executor]\nworkers = 1\n"
    )
    return make_project(tmp_path / "p", CODE, extra=toml)


def test_runs_record_the_environment_they_were_made_in(project: Path) -> None:
    with Workspace(project, env="dev") as ws:
        d = door(ws)
        ran = d.runs.run_pipeline("etl")
        again = d.runs.rerun(ran.id, task="work")
        queued = d.automation.submit("etl")
        fired, _ = d.automation.fire("hooked", run_key="hook/1", origin="trigger:hook")
        made = [ran, again, queued, fired]
        assert {r.environment for r in made} == {"dev"}
        assert {ws.store.runs.get_run(r.id).environment for r in made} == {"dev"}
        assert ws.store.facts.get_fact("environment") == "dev"
    with Workspace(project) as ws:  # no environment chosen: "default", on its own store
        assert door(ws).runs.run_pipeline("etl").environment == "default"
        assert [r.environment for r in ws.store.browse.list_runs()] == ["default"]


def test_a_store_is_refused_to_another_environment(project: Path) -> None:
    with Workspace(project) as ws:
        door(ws).runs.run_pipeline("etl")
    with Workspace(project, env="shared") as ws:
        with pytest.raises(WrongEnvironment) as info:
            door(ws).runs.create_run("etl")
        message = str(info.value)
        assert "belongs to environment 'default', not 'shared'" in message
        assert "give [env.shared] its own [store] url" in message
        assert "\n" not in message
    with Workspace(project) as ws:  # nothing was written by the refused one
        assert [r.environment for r in ws.store.browse.list_runs()] == ["default"]


def test_a_store_first_used_by_an_environment_is_refused_to_the_default(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "q", ONE_TASK, extra="\n[env.prod.executor]\nworkers = 1\n")
    with Workspace(root, env="prod") as ws:
        assert door(ws).runs.run_pipeline("etl").state == RunState.SUCCEEDED
    with Workspace(root) as ws, pytest.raises(WrongEnvironment) as info:
        door(ws).runs.find_run("0")
    assert "belongs to environment 'prod', not 'default'" in str(info.value)
    assert "use --env prod to work in it, or give [env.prod] its own [store] url" in str(
        info.value
    )


def _foreign_run(ws: Workspace, environment: str) -> str:
    """A queued run of ``etl`` recorded as made in ``environment`` (as a store restored from
    another environment's backup would hold)."""
    run = replace(
        timed_run("etl", ws.clock(), RunState.QUEUED, 0),
        code_version=ws.pipeline("etl").code_version,
        environment=environment,
    )
    ws.store.runs.create_run(run, plan.initial_task_runs(ws.pipeline("etl"), run.id))
    return run.id


def test_a_run_of_another_environment_is_not_driven(project: Path) -> None:
    with Workspace(project, env="dev") as ws:
        foreign = _foreign_run(ws, "prod")
        assert RunDriving(ws).resumable() == []  # `legato resume` looks for its own runs
        with pytest.raises(OtherEnvironment) as info:
            RunDriving(ws).execute(foreign)
        assert f"run {foreign} was made in environment 'prod'" in str(info.value)
        assert "this process is in 'dev'" in str(info.value)
        heard: list[str] = []
        owner = "host:1:0:aa"
        fleet = Fleet(ws, Actor.scheduler(owner), owner=owner, max_runs=4, say=heard.append)
        fleet.start()
        try:
            own = door(ws).runs.create_run("etl")
            fleet.start_queued(ws.clock())
            assert fleet.active == {own.id}
            fleet.adopt_orphans(ws.clock())
            fleet.start_queued(ws.clock())  # asked again: still left alone, said once
            while fleet.active:
                fleet.step(1.0)
        finally:
            fleet.shutdown()
        assert ws.store.runs.get_run(own.id).state == RunState.SUCCEEDED
        left = ws.store.runs.get_run(foreign)
        assert (left.state, left.lease_owner) == (RunState.QUEUED, None)
        assert ws.store.runs.get_attempts(foreign) == []
        said = [line for line in heard if foreign in line]
        assert len(said) == 1
        assert "made in environment 'prod'" in said[0] and "left queued" in said[0]


def test_a_run_made_before_environments_is_driven_anywhere(project: Path) -> None:
    with Workspace(project, env="dev") as ws:
        old = _foreign_run(ws, "dev")
        legacy = replace(
            timed_run("etl", ws.clock(), RunState.QUEUED, 0),
            code_version=ws.pipeline("etl").code_version,
        )
        ws.store.runs.create_run(legacy, plan.initial_task_runs(ws.pipeline("etl"), legacy.id))
        assert RunDriving(ws).execute(legacy.id).state == RunState.SUCCEEDED
        assert RunDriving(ws).execute(old).state == RunState.SUCCEEDED


def test_the_settings_in_effect_are_for_operators_and_admins(project: Path) -> None:
    with Workspace(project, env="dev") as ws:
        for role, allowed in (("viewer", False), ("operator", True), ("admin", True)):
            actor = Actor.http_client(
                f"a-{role}", permissions=Permissions(BUILT_IN[role]), role=role, auth="token"
            )
            project_service = ws.door(actor).project
            if allowed:
                shown = project_service.effective_config()
                assert shown["environment"] == "dev"
                assert shown["environments"] == ["default", "dev", "shared"]
            else:
                with pytest.raises(Forbidden):
                    project_service.effective_config()
