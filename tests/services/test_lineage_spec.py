"""The OpenLineage events a run sends are valid against the spec: every event a real local
HTTP server receives, of a run that succeeds and of one that fails, is read back into the
client's ``RunEvent`` with each facet in its generated class (tests/observability/
openlineage_spec.py says how), and broken copies of one of them are refused."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openlineage.client.serde import Serde

from legato.clock import ManualClock
from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.helpers import door
from tests.observability.conftest import Receiver
from tests.observability.openlineage_spec import structure_event
from tests.services.test_lineage import START, http, kinds, project, run


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets the value at the dotted ``path`` (``-`` deletes it)."""

    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value == "-":
            del target[last]
        else:
            target[last] = value

    return change


#: Ways to break an event (one with a parent, a nominal time and an error message), each of
#: which the spec refuses.
BROKEN = {
    "an unknown field": _set("runState", "FAILED"),
    "an unknown field in a dataset": _set("inputs.0.size", 12),
    "an unknown field in a standard facet": _set("run.facets.nominalTime.timezone", "UTC"),
    "a missing job name": _set("job.name", "-"),
    "a missing run": _set("run", "-"),
    "a missing required facet field": _set("run.facets.errorMessage.message", "-"),
    "an unknown event type": _set("eventType", "FINISHED"),
    "a time that is no time": _set("eventTime", "yesterday"),
    "a date without a time": _set("eventTime", "2026-12-06"),
    "a bad nominal time": _set("run.facets.nominalTime.nominalStartTime", "12/05/2026"),
    "a run id that is no UUID": _set("run.runId", "01a24a39561f"),
    "a parent run id that is no UUID": _set("run.facets.parent.run.runId", "42"),
    "a number for a name": _set("job.name", 42),
    "a producer that is no URL": _set("producer", "legato"),
    "no schemaURL": _set("schemaURL", "-"),
    "a facet without _producer": _set("run.facets.legato._producer", "-"),
    "a facet whose _schemaURL is no URL": _set("run.facets.legato._schemaURL", "legato facet"),
    "a standard facet with another schema": _set(
        "run.facets.parent._schemaURL", "https://example.com/parent.json"
    ),
}


def test_every_event_sent_is_valid_against_the_openlineage_spec(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = http(receiver)
    with Workspace(project(tmp_path / "ok", settings), clock=ManualClock(START)) as ws:
        assert run(door(ws)).state == RunState.SUCCEEDED
    with Workspace(project(tmp_path / "fail", settings), clock=ManualClock(START)) as ws:
        assert run(door(ws), fail=True).state == RunState.FAILED
    got = receiver.bodies()
    assert len(got) == 6 + 4  # the failed run: its START and FAIL, and its first task's
    assert ("FAIL", "nightly.extract") in kinds(got)

    for body in got:
        event = structure_event(body)
        # Read back, the event says what was sent: nothing was dropped or renamed.
        assert Serde.to_dict(event) == body
        assert event.eventType is not None and event.eventType.value == body["eventType"]
    facets = {key for body in got for key in body["run"]["facets"]}
    assert facets == {"legato", "nominalTime", "parent", "errorMessage"}

    # The check is not a formality: each broken copy of a task's FAIL event is refused.
    failed = next(
        e for e in got if (e["eventType"], e["job"]["name"]) == ("FAIL", "nightly.extract")
    )
    passed = []
    for what, breaking in BROKEN.items():
        broken = copy.deepcopy(failed)
        breaking(broken)
        try:
            structure_event(broken)
        except (ValueError, TypeError):
            continue  # InvalidEvent is a ValueError; a generated validator raises either
        passed.append(what)
    assert passed == [], f"accepted although broken: {passed}"
