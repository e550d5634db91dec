"""A live scheduler removes the heartbeats that SIGKILLed daemons left behind."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from legato.domain.records import DaemonRecord
from tests.helpers import ONE_TASK, Daemons, cli, make_project, wait_for

if TYPE_CHECKING:
    from legato.store.store import Store

def test_a_live_scheduler_removes_a_killed_ones_heartbeat(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "p", ONE_TASK)
    store = store_of(project)
    # A scheduler that was SIGKILLed ten minutes ago, on a machine since lost.
    then = datetime.now(UTC) - timedelta(minutes=10)
    killed = DaemonRecord("lost:4242:dead", "scheduler", "lost", 4242, "0", None, then, then)
    store.daemons.beat(killed)
    first = daemons.up(project, command="scheduler")

    def ids() -> set[str]:
        return {d.id for d in store.daemons.daemons()}

    wait_for(lambda: len(ids()) == 1 and killed.id not in ids(), what="the dead row removed")
    first.wait_output(f"removed daemon {killed.id}")
    listed = json.loads(cli("daemons", "--json", project=project).stdout)
    assert [d["kind"] for d in listed] == ["scheduler"]
    assert killed.id not in {d["id"] for d in listed}

    # Killed in turn: its row stays (listed as silent) until a live daemon sweeps it.
    first.stop(signal.SIGKILL)
    assert len(ids()) == 1
    assert "s ago" in cli("daemons", project=project).stdout
