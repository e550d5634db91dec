"""Several `legato scheduler` processes on one PostgreSQL store: shared work, no double runs,
take-over after a scheduler is killed, an outage of the store; SQLite's one scheduler."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.conftest import _libpq
from tests.e2e.proxy import TcpProxy
from tests.helpers import DaemonProcess, Daemons, door, make_project, wait_for

LEASE = 3.0  # seconds: make_project's lease_seconds

# Each task appends a row per execution that got to its end: a task run that "succeeded
# twice" shows up as two rows.
CODE = """
import os, time
import psycopg
from legato import pipeline, task

DSN = {dsn!r}

def record(ctx, name):
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO executions (run_id, task, attempt, pid) VALUES (%s, %s, %s, %s)",
            (ctx.run_id, name, ctx.attempt, os.getpid()),
        )

@task
def extract(ctx) -> int:
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


def _project(root: Path, pg_url: str, pause: float, workers: int = 2) -> Path:
    dsn = _libpq(pg_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS executions "
            "(run_id text, task text, attempt int, pid int, at timestamptz DEFAULT now())"
        )
    return make_project(
        root,
        CODE.format(dsn=dsn, pause=pause),
        workers=workers,
        extra=f'\n[store]\nurl = "{pg_url}"\n',
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


def test_two_schedulers_share_300_runs_and_no_task_runs_twice(
    tmp_path: Path, pg_url: str, daemons: Daemons
) -> None:
    project = _project(tmp_path / "proj", pg_url, pause=0.0)
    ids = _queue(project, 300)
    first = daemons.up(project, command="scheduler")
    second = daemons.up(project, command="scheduler")
    wait_for(lambda: _all_finished(project, ids), timeout=240, what="300 runs finished")

    assert _states(project, ids) == Counter({RunState.SUCCEEDED: 300})
    runs = _executions(pg_url)
    # Every task of every run ran to its end exactly once, whichever scheduler drove it.
    assert set(runs) == {(r, t) for r in ids for t in ("extract", "load")}
    assert max(runs.values()) == 1
    # Both schedulers took a share (each claim is a batch of queued runs).
    owners = _owners(project, ids)
    assert set(owners) == {str(first.pid), str(second.pid)}, owners
    assert min(owners.values()) >= 30, owners


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
