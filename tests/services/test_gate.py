"""The one door: every public service method passes the gate with its actor; a refusal there
stops the call before anything happens; commands are recorded with who gave them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.security.roles import Roles
from legato.services.accounts import Accounts
from legato.services.actor import Actor, ActorKind
from legato.services.audit_service import AuditTrail
from legato.services.automation_service import Automation
from legato.services.catalog import Catalog
from legato.services.door import Door
from legato.services.driving import Fleet
from legato.services.gate import Gate, Service, actions_of
from legato.services.materialize_service import Materialize
from legato.services.overview_service import Overview
from legato.services.presence import Presence
from legato.services.project import ProjectService
from legato.services.resources_service import ResourcesService
from legato.services.run_service import Runs
from legato.services.schema_service import Schema
from legato.services.secrets_service import Secrets
from legato.services.service_errors import Forbidden
from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, make_project

CODE = ONE_TASK

SERVICES = (
    Runs, Catalog, Automation, ProjectService, Presence, Schema, Fleet, Accounts, AuditTrail,
    Secrets, Overview, ResourcesService, Materialize,
)


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


def test_commands_and_refusals_go_to_the_audit_trail_with_who_how_and_from_where(
    door: Door,
) -> None:
    bob = Actor.http_client(
        "bob",
        permissions=Roles.parse().permissions("operator"),
        role="operator",
        auth="session",
        source="10.1.2.3",
    )
    web = door.as_actor(bob)
    run = web.runs.create_run("etl")
    web.catalog.run(run.id)  # a read: not recorded
    web.runs.cancel(run.id)
    with pytest.raises(Forbidden, match=r"'bob' \(role operator\) is not allowed to users\.read"):
        web.accounts.users()
    rows = door.audit.entries(limit=10)[::-1]
    assert [(r.actor, r.auth, r.source, r.action, r.target, r.outcome) for r in rows] == [
        ("http:bob", "session", "10.1.2.3", "runs.create", "etl", "ok"),
        ("http:bob", "session", "10.1.2.3", "runs.cancel", run.id, "ok"),
        ("http:bob", "session", "10.1.2.3", "users.read", "", "refused"),
    ]
    assert door.audit.verify() is None


def test_secrets_given_to_an_action_stay_out_of_the_audit_trail(door: Door) -> None:
    door.accounts.add_user("carol", "viewer", "a long enough password")
    (row,) = door.audit.entries(action="users.change")
    assert row.target == "carol"
    assert "a long enough password" not in repr(row) and row.detail == {}


def test_nobody_may_do_anything(door: Door) -> None:
    anonymous = door.as_actor(Actor.http_client())
    with pytest.raises(Forbidden):
        anonymous.catalog.runs()
    with pytest.raises(Forbidden):
        anonymous.runs.create_run("etl")
