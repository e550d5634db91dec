"""Shared test helpers: throwaway projects written to disk, and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from legato.domain.records import RunRecord
    from legato.domain.states import RunState
    from legato.services.door import Door
    from legato.services.workspace import Workspace

#: A project of one pipeline, ``etl``, of one in-process task.
ONE_TASK = """
from legato import pipeline, task

@task(in_process=True)
def work() -> int:
    return 1

@pipeline
def etl():
    work()
"""

LEGATO = str(Path(sys.executable).parent / "legato")


def fan_code(leaves: int, failing: int) -> str:
    """A pipeline ``fan``: a root, ``leaves`` calls of ``leaf`` in a loop (the one given
    ``failing`` raises "leaf N broke"), and a join; the leaves' node ids are ``leaf``,
    ``leaf_2``... so the failing one is ``leaf_{failing + 1}``."""
    return f"""
from legato import pipeline, task


@task
def noop(*args) -> None:
    return None


@task
def leaf(root, i: int) -> int:
    if i == {failing}:
        raise ValueError(f"leaf {{i}} broke")
    return i


@pipeline
def fan():
    root = noop()
    noop(*[leaf(root, i) for i in range({leaves})])
"""


def make_project(
    root: Path,
    code: str,
    *,
    module: str = "flows",
    workers: int = 2,
    extra: str = "",
    lease_seconds: float = 3,
) -> Path:
    """A project folder with legato.toml and one pipeline module holding ``code``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text(
        f'[project]\nname = "{root.name}"\nmodules = ["{module}"]\n\n'
        f"[executor]\nworkers = {workers}\nlease_seconds = {lease_seconds:g}\n{extra}",
        encoding="utf-8",
    )
    (root / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return root


def cli(
    *args: str,
    project: Path | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``legato`` command and capture what it prints (``input``: what it
    reads on stdin; none otherwise)."""
    cmd = [LEGATO, *args]
    if project is not None:
        cmd += ["--project", str(project)]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        input=input,
    )


def marks(path: Path) -> list[str]:
    """Lines appended by tasks to a marker file (one per execution)."""
    return path.read_text().split() if path.exists() else []


#: Timeouts in tests are bounds for a quiet machine; a busy one (CI, two cores shared with
#: other work) gets this many times as long. A test that passes waits for its event, never for
#: the bound, so the slack costs nothing then.
SLACK = float(os.environ.get("LEGATO_TEST_SLACK", "4"))


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``cond`` until it holds; fail the test if it does not within ``timeout`` s (times
    ``SLACK``)."""
    bound = timeout * SLACK
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {bound:g}s")
        time.sleep(0.05)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonProcess:
    """``legato up`` (or another long-running command) as a subprocess; output to a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [LEGATO, *args], stdout=fh, stderr=subprocess.STDOUT, env=env
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_output(self, text: str, timeout: float = 15.0) -> None:
        """Wait until ``text`` is printed; fail at once if the process ends first."""

        def printed() -> bool:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exited ({self.proc.returncode}) before printing {text!r}:\n{self.output()}"
                )
            return False

        wait_for(printed, timeout=timeout, what=f"output {text!r}")

    def stop(self, sig: int | None = None, timeout: float = 10.0) -> int | None:
        """Send ``sig`` (SIGTERM by default), wait; SIGKILL after ``timeout``. The exit code."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if sig is None else sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        import signal

        self.stop(signal.SIGKILL)


class Daemons:
    """Starts ``legato up`` processes for a test and stops every one of them afterwards."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[DaemonProcess] = []

    def up(
        self, project: Path, *, port: int | None = None, command: str = "up"
    ) -> DaemonProcess:
        """Start ``legato <command>`` (up, web or scheduler) on ``project``.

        Without ``port`` the web server takes any free port (the daemon prints its URL), so
        a test never fails because something else on the machine listens on 8765.
        """
        args = [command, "--project", str(project)]
        if command in ("up", "web"):
            args += ["--port", str(0 if port is None else port)]
        log = self.log_dir / f"daemon{len(self.started) + 1}.log"
        daemon = DaemonProcess(args, log)
        self.started.append(daemon)
        return daemon

    def stop_all(self) -> None:
        for daemon in self.started:
            daemon.stop(timeout=10)


@contextmanager
def workspace_on(store_url: str, root: Path, code: str, now: datetime) -> Iterator[Workspace]:
    """A workspace of a project holding ``code`` whose store is at ``store_url``, its clock
    stopped at ``now``; closed afterwards."""
    from legato.clock import ManualClock
    from legato.services.workspace import Workspace

    extra = f'\n[store]\nurl = "{store_url}"\n'
    ws = Workspace(make_project(root, code, extra=extra), clock=ManualClock(now))
    try:
        yield ws
    finally:
        ws.close()


def door(ws: Workspace) -> Door:
    """The services of ``ws`` for the local user, as the CLI gets them."""
    from legato.services.actor import Actor

    return ws.door(Actor.local_user())


def timed_run(pipeline: str, created: datetime, state: RunState, seconds: float) -> RunRecord:
    """A run record made at ``created`` in ``state``: started a second later (unless queued)
    and, if finished, ``seconds`` after its start; to write straight into a store."""
    from datetime import timedelta

    from legato.domain.ids import new_run_id
    from legato.domain.records import RunRecord

    started = created + timedelta(seconds=1) if state != "queued" else None
    finished = started + timedelta(seconds=seconds) if started and state.finished else None
    return RunRecord(
        id=new_run_id(created),
        pipeline=pipeline,
        state=state,
        params={},
        partition=None,
        code_version="v1",
        created_at=created,
        started_at=started,
        finished_at=finished,
    )


def api_token(ws: Workspace, role: str = "admin", name: str | None = None) -> str:
    """A new API token of ``role`` in ``ws``'s store (made by the local user, an admin)."""
    made = door(ws).accounts.create_token(name or f"test-{role}-{os.urandom(3).hex()}", role)
    return made.token


def bearer(ws: Workspace, role: str = "admin") -> dict[str, str]:
    """An ``Authorization`` header with a new API token of ``role`` in ``ws``'s store."""
    return {"Authorization": f"Bearer {api_token(ws, role)}"}


def signed_client(ws: Workspace, role: str = "admin", *, web: bool = True) -> Any:
    """A TestClient of the real app over ``ws``, signed in with an API token of ``role``."""
    import warnings

    from legato.server.app import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
        from fastapi.testclient import TestClient

    app = create_app(door(ws), web=web, allowed_hosts=["testserver"])
    return TestClient(app, headers={"Authorization": f"Bearer {api_token(ws, role)}"})


def project_token(root: Path, role: str = "admin") -> str:
    """A new API token of ``role`` in the store of the project at ``root`` (which a running
    ``legato up`` may have open too)."""
    from legato.services.workspace import Workspace

    with Workspace(root) as ws:
        return api_token(ws, role)


def sign_in_link(root: Path, base: str) -> str:
    """A new one-time link that signs a browser in to the server at ``base`` (serving the
    project at ``root``) as the local admin, as ``legato up`` prints one."""
    from legato.services.workspace import Workspace

    with Workspace(root) as ws:
        accounts = door(ws).accounts
        name = door(ws).actor.name
        accounts.ensure_admin(name)
        return f"{base}/signin/link?token={accounts.sign_in_link(name)}"


def http_client(base: str, root: Path, role: str = "admin", **kw: Any) -> Any:
    """An httpx client of the server at ``base`` serving the project at ``root``, signed in
    with a new API token of ``role`` (``kw``: more httpx.Client options)."""
    import httpx

    kw.setdefault("timeout", 30)
    headers = {"Authorization": f"Bearer {project_token(root, role)}", **kw.pop("headers", {})}
    return httpx.Client(base_url=base, headers=headers, **kw)


def finished_run(
    api: Any, pipeline: str, body: dict[str, Any], timeout: float = 60
) -> dict[str, Any]:
    """Submit a run of ``pipeline`` through the API client ``api`` (``body``: the launch's
    JSON) and wait for its end; returns the finished run's JSON."""
    made = api.post(f"/api/v1/pipelines/{pipeline}/runs", json=body)
    assert made.status_code < 400, made.text
    path = f"/api/v1/runs/{made.json()['id']}"
    wait_for(
        lambda: api.get(path).json()["run"]["state"] in ("succeeded", "failed", "canceled"),
        timeout=timeout,
        what=f"run {path} to finish",
    )
    run: dict[str, Any] = api.get(path).json()["run"]
    return run


def run_with_nats(url: str, work: Callable[[Any], Any]) -> Any:
    """Run ``await work(jetstream_context)`` on a throwaway NATS connection."""
    import asyncio

    import nats

    async def main() -> Any:
        nc = await nats.connect(url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "1m") mounted at ``where`` (made), unmounted afterwards.

    Mounting needs root: elsewhere the test is skipped, but CI runs as root and must run it.
    """
    import pytest

    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs this test as root: mounting a small tmpfs needs it")
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
