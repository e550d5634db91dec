"""`legato scheduler` with `[lineage]`: the runs it drives reach an OpenLineage HTTP server
(a local one the test starts) from the daemon's own lineage thread."""

from __future__ import annotations

import signal
from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import Daemons, door, make_project, wait_for
from tests.observability.conftest import Receiver
from tests.observability.openlineage_spec import structure_event
from tests.services.test_lineage import CODE, SUCCEEDED, http, kinds


def test_a_scheduler_sends_the_lineage_of_the_runs_it_drives(
    tmp_path: Path, daemons: Daemons, receiver: Receiver
) -> None:
    root = make_project(tmp_path / "shop", CODE, workers=1, extra=f"[lineage]\n{http(receiver)}")
    with Workspace(root) as ws:
        made = door(ws).runs.create_run("nightly", {}, partition="2026-12-05")
    scheduler = daemons.up(root, command="scheduler")
    scheduler.wait_output("legato scheduler:")
    wait_for(lambda: len(receiver.got) == 6, timeout=30, what="the run's six lineage events")
    got = receiver.bodies()
    assert kinds(got) == SUCCEEDED
    assert got[0]["run"]["facets"]["legato"]["runId"] == made.id
    for body in got:  # each valid against the spec (tests/services/test_lineage_spec.py)
        structure_event(body)
    assert scheduler.stop(signal.SIGTERM) == 0
