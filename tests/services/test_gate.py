"""The one door: every public service method passes the gate with its actor; a refusal there
stops the call before anything happens; commands are recorded with who gave them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.services.actor import Actor, ActorKind
from legato.services.automation_service import Automation
from legato.services.catalog import Catalog
from legato.services.door import Door
from legato.services.driving import Fleet
from legato.services.gate import Gate, Service, actions_of
from legato.services.presence import Presence
from legato.services.project import ProjectService
from legato.services.run_service import Runs
from legato.services.schema_service import Schema
from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, make_project

CODE = ONE_TASK

SERVICES = (Runs, Catalog, Automation, ProjectService, Presence, Schema, Fleet)


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_every_public_service_method_is_a_declared_action(cls: type) -> None:
    assert issubclass(cls, Service)
    undeclared = [name for name, act in actions_of(cls).items() if act is None]
    assert undeclared == [], f"{cls.__name__} methods that skip the gate: {undeclared}"


def test_the_door_hands_out_services_not_the_store() -> None:
    public = {n for n in vars(Door) if not n.startswith("_")}
    assert "store" not in public and "ws" not in public


class Refusing(Gate):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def check(self, actor: Actor, action: str) -> None:
        self.seen.append((str(actor), action))
        if actor.kind == ActorKind.HTTP and action == "runs.create":
            raise PermissionError(f"{actor} may not {action}")


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    ws = Workspace(make_project(tmp_path / "p", CODE))
    yield ws.door(Actor.local_user())
    ws.close()


def test_a_refusal_at_the_gate_stops_the_call_before_anything_happens(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Refusing()
    monkeypatch.setattr(Service, "gate", gate)
    web = door.as_actor(Actor.http_client("ann"))
    with pytest.raises(PermissionError, match=r"http:ann may not runs\.create"):
        web.runs.create_run("etl")
    with pytest.raises(PermissionError):
        web.automation.submit("etl")  # the same action through another service
    assert web.catalog.runs().runs == ()  # nothing was recorded; reads pass
    made = door.runs.create_run("etl")  # the local user may
    assert [r.id for r in door.catalog.runs().runs] == [made.id]
    # One check per call: what an action does inside (record, snapshot) is not checked again.
    assert gate.seen.count(("http:ann", "runs.create")) == 2
    assert (str(door.actor), "runs.create") in gate.seen


def test_commands_are_recorded_with_their_actor_and_reads_are_not(
    door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="legato.audit")
    web = door.as_actor(Actor.http_client("bob"))
    run = web.runs.create_run("etl")
    web.catalog.run(run.id)
    web.runs.cancel(run.id)
    lines = [r.getMessage() for r in caplog.records if r.name == "legato.audit"]
    assert lines == [
        "http:bob: runs.create('etl')",
        f"http:bob: runs.cancel({run.id!r})",
    ]
