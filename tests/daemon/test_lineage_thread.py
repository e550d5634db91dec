"""The daemons' lineage thread sends what is left in the outbox (events of runs driven by
other processes, retries come due) without being asked, and stops when told."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from legato.clock import ManualClock
from legato.daemon.lineage_thread import LineageThread
from legato.services.actor import Actor
from legato.services.workspace import Workspace
from tests.helpers import door, make_project, wait_for
from tests.observability.conftest import Receiver
from tests.services.test_lineage import CODE, http


def test_the_thread_sends_the_events_a_failed_send_left_behind(
    tmp_path: Path, receiver: Receiver
) -> None:
    clock = ManualClock(datetime(2026, 12, 6, 3, 0, tzinfo=UTC))
    root = make_project(tmp_path / "shop", CODE, extra=f"[lineage]\n{http(receiver)}")
    receiver.status = 503
    with Workspace(root, clock=clock) as ws:
        d = door(ws)
        made = d.runs.create_run("nightly", {}, partition="2026-12-05")
        d.runs.execute(made.id)
        assert len(receiver.got) == 1  # tried once as the run ended; the rest wait
        receiver.status = 200
        clock.advance(60)  # past the retry's backoff
        thread = LineageThread(d.as_actor(Actor.scheduler("daemon-1")), "daemon-1")
        thread.start()
        try:
            wait_for(lambda: len(receiver.got) == 7, what="the run's six events sent")
        finally:
            thread.stop()
            thread.join(timeout=10)
        assert not thread.is_alive()
        assert [e.state for e in d.lineage.events(made.id)] == ["sent"] * 6
