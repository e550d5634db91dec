"""Several `legato scheduler` processes on one PostgreSQL store: shared work, no double runs,
take-over after a scheduler is killed, an outage of the store; SQLite's one scheduler."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.conftest import _libpq
from tests.e2e.proxy import TcpProxy
from tests.helpers import DaemonProcess, Daemons, door, make_project, wait_for

if TYPE_CHECKING:
    from legato.store.store import Store

LEASE = 3.0  # seconds: make_project's lease_seconds
SLOTS = 4  # [daemon] max_runs of each scheduler in the sharing test

# Each task appends a row per execution that got to its end: a task run that "succeeded
# twice" shows up as two rows.
CODE = """
import os, time
import psycopg
from legato import pipeline, task

DSN = {dsn!r}
GATE = {gate!r}  # None, or a file each extract waits for: the test opens the gate by making it

def record(ctx, name):
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO executions (run_id, task, attempt, pid) VALUES (%s, %s, %s, %s)",
            (ctx.run_id, name, ctx.attempt, os.getpid()),
        )

@task
def extract(ctx) -> int:
    while GATE is not None and not os.path.exists(GATE):
        time.sleep(0.02)
    time.sleep({pause})
    record(ctx, "extract")
    return 1

@task
def load(ctx, n: int) -> int:
    time.sleep({pause})
    record(ctx, "load")
    return n + 1

@pipeline
def etl():
    load(extract())
"""


def _project(
    root: Path,
    pg_url: str,
    pause: float,
    workers: int = 2,
    *,
    gate: Path | None = None,
    max_runs: int | None = None,
    lease_seconds: float = LEASE,
) -> Path:
    dsn = _libpq(pg_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS executions "
            "(run_id text, task text, attempt int, pid int, at timestamptz DEFAULT now())"
        )
    daemon = f"\n[daemon]\nmax_runs = {max_runs}\n" if max_runs is not None else ""
    return make_project(
        root,
        CODE.format(dsn=dsn, pause=pause, gate=None if gate is None else str(gate)),
        workers=workers,
        extra=f'\n[store]\nurl = "{pg_url}"\n{daemon}',
        lease_seconds=lease_seconds,
    )


def _queue(project: Path, n: int) -> list[str]:
    ws = Workspace(project)
    try:
        return [door(ws).runs.create_run("etl").id for _ in range(n)]
    finally:
        ws.close()


def _executions(pg_url: str) -> Counter[tuple[str, str]]:
    with psycopg.connect(_libpq(pg_url)) as conn:
        found = conn.execute("SELECT run_id, task FROM executions").fetchall()
    return Counter((r, t) for r, t in found)


def _states(project: Path, ids: list[str]) -> Counter[RunState]:
    ws = Workspace(project)
    try:
        return Counter(ws.store.runs.get_run(i).state for i in ids)
    finally:
        ws.close()


def _owners(project: Path, ids: list[str]) -> Counter[str]:
    """Which daemon took each run's lease first (the "lease" events)."""
    ws = Workspace(project)
    try:
        firsts = []
        for run_id in ids:
            leases = [e.message for e in ws.store.runs.get_events(run_id) if e.kind == "lease"]
            firsts.append(str(leases[0]).split(":")[1] if leases else "-")  # the pid
        return Counter(firsts)
    finally:
        ws.close()


def _all_finished(project: Path, ids: list[str]) -> bool:
    states = _states(project, ids)
    return sum(n for s, n in states.items() if s.finished) == len(ids)


def _held(store: Store, *states: RunState) -> Counter[str]:
    """Runs in ``states`` per pid of the scheduler holding their lease."""
    # One query: a run claimed a moment ago goes from queued to running meanwhile.
    found = store.browse.list_runs(state=list(states), limit=None)
    return Counter(r.lease_owner.split(":")[1] for r in found if r.lease_owner)


def _queued_free(store: Store) -> int:
    """Queued runs that no scheduler has claimed."""
    queued = store.browse.list_runs(state=RunState.QUEUED, limit=None)
    return sum(1 for r in queued if not r.lease_owner)


def _two_more_beats(store: Store, pid: int) -> None:
    """Wait for two more heartbeats of the scheduler ``pid``. It beats every 5 s and looks
    for queued runs at least once a second, so between them it has looked at least once."""

    def beat_at() -> datetime | None:
        return next((d.heartbeat_at for d in store.daemons.daemons() if d.pid == pid), None)

    seen = beat_at()
    wait_for(lambda: beat_at() != seen, timeout=30, what=f"a heartbeat of pid {pid}")
    then = beat_at()
    wait_for(lambda: beat_at() != then, timeout=30, what=f"a second heartbeat of pid {pid}")


def test_two_schedulers_share_300_runs_and_no_task_runs_twice(
    tmp_path: Path, pg_url: str, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    # Every extract waits at a gate, so no run can finish and free a slot: what each
    # scheduler holds depends on its max_runs only, never on how fast this machine is.
    gate = tmp_path / "gate"
    # A long lease: no run of a scheduler that is busy but slow can look orphaned.
    project = _project(
        tmp_path / "proj", pg_url, pause=0.0, gate=gate, max_runs=SLOTS, lease_seconds=60
    )
    ids = _queue(project, 300)
    store = store_of(project)

    try:
        first = daemons.up(project, command="scheduler")
        me = str(first.pid)
        wait_for(
            lambda: _held(store, RunState.RUNNING)[me] >= SLOTS,
            timeout=60,
            what=f"the first scheduler drives {SLOTS} runs",
        )
        # Saturated, it claims no more, however often it looks: the rest is left for others.
        _two_more_beats(store, first.pid)
        assert _held(store, RunState.QUEUED, RunState.RUNNING) == Counter({me: SLOTS})
        assert _queued_free(store) == 300 - SLOTS
        assert first.output().count("started run") == SLOTS

        second = daemons.up(project, command="scheduler")
        other = str(second.pid)
        wait_for(
            lambda: _held(store, RunState.RUNNING)[other] >= SLOTS,
            timeout=60,
            what=f"the second scheduler drives {SLOTS} runs",
        )
        assert _held(store, RunState.QUEUED, RunState.RUNNING) == Counter({me: SLOTS, other: SLOTS})
        assert _queued_free(store) == 300 - 2 * SLOTS
    finally:
        gate.touch()  # also when an assertion failed: no task is left waiting at the gate

    wait_for(lambda: _all_finished(project, ids), timeout=240, what="300 runs finished")

    assert _states(project, ids) == Counter({RunState.SUCCEEDED: 300})
    runs = _executions(pg_url)
    # Every task of every run ran to its end exactly once, whichever scheduler drove it.
    assert set(runs) == {(r, t) for r in ids for t in ("extract", "load")}
    assert max(runs.values()) == 1
    # Both drove runs: each its first SLOTS at least, and the rest as their slots freed.
    owners = _owners(project, ids)
    assert set(owners) == {me, other}, owners
    assert min(owners.values()) >= SLOTS, owners


def test_a_killed_scheduler_s_runs_finish_on_the_other(
    tmp_path: Path, pg_url: str, daemons: Daemons
) -> None:
    project = _project(tmp_path / "proj", pg_url, pause=0.4)
    ids = _queue(project, 40)
    victim = daemons.up(project, command="scheduler")
    victim.wait_output("started run", timeout=30)
    survivor = daemons.up(project, command="scheduler")
    survivor.wait_output("started run", timeout=30)
    wait_for(lambda: len(_executions(pg_url)) >= 20, timeout=60, what="work under way")
    victim.kill()
    killed_at = time.monotonic()
    ws = Workspace(project)
    try:
        held = [ws.store.runs.get_run(i) for i in ids]
    finally:
        ws.close()
    orphaned = [
        r.id
        for r in held
        if r.state == RunState.RUNNING and f":{victim.pid}:" in str(r.lease_owner)
    ]
    assert orphaned, "the killed scheduler drove no run at the time"

    # The survivor takes each of them over once its lease has run out (a few seconds, plus
    # its orphan check every 5 s), and finishes them.
    def taken_over() -> bool:
        ws = Workspace(project)
        try:
            return all(
                f":{survivor.pid}:" in str(ws.store.runs.get_run(i).lease_owner)
                or ws.store.runs.get_run(i).state.finished
                for i in orphaned
            )
        finally:
            ws.close()

    wait_for(taken_over, timeout=LEASE + 5 + 10, what="orphaned runs taken over")
    took = time.monotonic() - killed_at
    wait_for(lambda: _all_finished(project, ids), timeout=120, what="every run finished")
    assert _states(project, ids) == Counter({RunState.SUCCEEDED: 40})
    assert took <= LEASE + 5 + 10
    assert "resuming run" in survivor.output()
    assert survivor.proc.poll() is None


def test_sqlite_refuses_a_second_scheduler(tmp_path: Path, daemons: Daemons) -> None:
    project = make_project(
        tmp_path / "proj",
        "from legato import pipeline, task\n\n@task\ndef a() -> int:\n    return 1\n\n"
        "@pipeline\ndef p():\n    a()\n",
    )
    first = daemons.up(project, command="scheduler")
    first.wait_output("Ctrl-C stops", timeout=30)
    wait_for(lambda: first.pid is not None and "legato scheduler" in first.output())
    time.sleep(0.5)  # its seat is taken before its loop starts
    second = daemons.up(project, command="scheduler")
    assert second.proc.wait(30) != 0
    out = second.output()
    assert "another scheduler already drives the runs of this SQLite store" in out
    assert f"pid {first.pid}" in out
    assert "PostgreSQL" in out
    assert first.proc.poll() is None
    # Once the first is gone (even killed), a new one may start.
    first.kill()
    third = daemons.up(project, command="scheduler")
    third.wait_output("Ctrl-C stops", timeout=30)
    time.sleep(1.0)
    assert third.proc.poll() is None, third.output()


def test_schedulers_wait_out_a_store_outage(tmp_path: Path, pg_url: str, daemons: Daemons) -> None:
    # The scheduler reaches PostgreSQL through a proxy that the test cuts for a while, as a
    # restart of the server would: connections dropped, new ones refused.
    host_port = re.search(r"@([^/]+)/", pg_url)
    assert host_port is not None
    host, port = host_port.group(1).split(":")
    proxy = TcpProxy(host, int(port))
    try:
        via_proxy = pg_url.replace(host_port.group(1), f"127.0.0.1:{proxy.port}")
        project = _project(tmp_path / "proj", pg_url, pause=0.3)
        toml = project / "legato.toml"
        toml.write_text(toml.read_text().replace(pg_url, via_proxy))
        ids = _queue(project, 30)
        scheduler: DaemonProcess = daemons.up(project, command="scheduler")
        wait_for(lambda: len(_executions(pg_url)) >= 6, timeout=60, what="work under way")
        proxy.cut()
        scheduler.wait_output("the store is unreachable", timeout=20)
        time.sleep(LEASE * 2)  # longer than a lease: the worst case
        assert scheduler.proc.poll() is None, scheduler.output()
        proxy.restore()
        scheduler.wait_output("the store is back", timeout=30)
        wait_for(lambda: _all_finished(project, ids), timeout=120, what="every run finished")
        assert _states(project, ids) == Counter({RunState.SUCCEEDED: 30})
        assert scheduler.proc.poll() is None
        assert scheduler.stop(signal.SIGTERM) == 0
    finally:
        proxy.close()


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The projects name their store in legato.toml: an outer LEGATO_DATABASE_URL must not win.
    monkeypatch.delenv("LEGATO_DATABASE_URL", raising=False)
