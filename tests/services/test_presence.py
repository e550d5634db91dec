"""Daemon heartbeats: a daemon that stops beating is listed as silent, then removed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from legato.clock import ManualClock
from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, door, make_project


def test_a_daemon_silent_for_four_leases_is_removed_by_a_live_ones_sweep(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, lease_seconds=30)
    clock = ManualClock(datetime(2026, 11, 20, 12, tzinfo=UTC))
    with Workspace(root, clock=clock) as ws:
        presence = door(ws).presence
        assert presence.silent_after().total_seconds() == 120  # four leases of 30 s
        presence.beat("host:1:killed", "scheduler", None, clock())
        presence.beat("host:2:live", "up", "http://host:8765", clock())
        for _ in range(24):  # the live one beats every 5 s; the other was SIGKILLed
            clock.advance(5)
            presence.beat("host:2:live", "up", "http://host:8765", clock())
            assert presence.sweep(clock()) == []
        # Silent for two minutes: still listed (an operator sees it stopped beating).
        assert [d.id for d in presence.daemons(clock())] == ["host:2:live", "host:1:killed"]
        clock.advance(1)
        assert [d.id for d in presence.sweep(clock())] == ["host:1:killed"]
        assert [d.id for d in presence.daemons(clock())] == ["host:2:live"]
        assert [d.id for d in ws.store.daemons.daemons()] == ["host:2:live"]


def test_a_short_lease_never_makes_a_live_daemon_look_gone(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, lease_seconds=2)
    with Workspace(root) as ws:
        assert door(ws).presence.silent_after().total_seconds() == 60
