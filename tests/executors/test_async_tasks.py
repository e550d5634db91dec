"""``async def`` tasks: on their own, in thread mode, and mapped over thousands of slow HTTP
requests that a worker runs side by side, each with its own timeout, retries and log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.domain.states import RunState, TaskState
from legato.services.workspace import Workspace
from tests.helpers import door, make_project

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


SERVER = r"""
import asyncio, json, sys

delay = float(sys.argv[1])
state = {"in_flight": 0, "most_at_once": 0, "served": 0}

async def answer(reader, writer):
    try:
        line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        if not line:
            return  # a client gone before asking (a coroutine cancelled by its timeout)
        path = line.split()[1].strip(b"/")
        if path == b"stats":
            body = json.dumps(state).encode()
        else:
            state["in_flight"] += 1
            state["most_at_once"] = max(state["most_at_once"], state["in_flight"])
            try:
                await asyncio.sleep(delay)
            finally:
                state["in_flight"] -= 1
            state["served"] += 1
            body = path
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class SlowServer:
    """A real HTTP server (asyncio, in a process of its own: the driver in this process
    does not slow it down) answering each GET after ``delay`` seconds with the path's
    number; ``stats()`` says how many requests it served and held at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SlowServer:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.delay)], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(30)

    def stats(self) -> dict[str, int]:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=30).json()


@pytest.fixture
def workspaces() -> Iterator[list[Workspace]]:
    opened: list[Workspace] = []
    yield opened
    for ws in opened:
        ws.close()


def _open(opened: list[Workspace], root: Path, code: str, extra: str = "") -> Workspace:
    ws = Workspace(make_project(root, code, workers=2, extra=extra))
    opened.append(ws)
    return ws


FETCH = """
import asyncio, logging
import httpx
from legato import Context, pipeline, task

@task
def urls(base: str, n: int) -> list[str]:
    return [f"{base}/{i}" for i in range(n)]

@task(concurrency=200, timeout=15, retries=1)
async def fetch(ctx: Context, url: str) -> int:
    number = int(url.rsplit("/", 1)[1])
    if number == 7:
        await asyncio.sleep(600)  # stuck: its timeout cancels it, and it alone
    if number % 500 == 3:
        print(f"fetching {number}")
        ctx.log.info("asked for %d", number)
        logging.getLogger("client").warning("slow server for %d", number)
    async with httpx.AsyncClient(timeout=60, verify=False) as client:  # plain HTTP
        reply = await client.get(url)
    return int(reply.text)

@task
def total(xs: list[int]) -> int:
    return sum(xs)

@pipeline
def crawl(base: str, n: int = 2000):
    total(fetch.map(urls(base, n)))
"""


def test_an_async_task_mapped_over_slow_urls_runs_them_side_by_side(
    tmp_path, workspaces
) -> None:
    ws = _open(workspaces, tmp_path / "p", FETCH)
    with SlowServer(delay=0.1) as server:
        r = door(ws).runs.run_pipeline("crawl", {"base": f"http://127.0.0.1:{server.port}"})
        stats = server.stats()
    tasks = {t.task_key: t for t in door(ws).runs.task_runs(r.id)}
    fetched = {k: t for k, t in tasks.items() if k.startswith("fetch[")}
    assert len(fetched) == 2000
    # The stuck element timed out, twice (it had a retry), alone: every other one succeeded
    # at its first attempt, so no worker was killed under them.
    assert fetched["fetch[7]"].state == TaskState.FAILED
    outcomes = [(a.outcome, a.error) for a in door(ws).runs.attempts(r.id, "fetch[7]")]
    assert outcomes == [("timeout", "timed out after 15s")] * 2
    others = [t for k, t in fetched.items() if k != "fetch[7]"]
    assert all(t.state == TaskState.SUCCEEDED and t.attempt == 1 for t in others)
    assert door(ws).runs.output(r.id, "fetch[1234]") == 1234
    assert stats["served"] == 1999
    # Side by side: far more requests were held at once than there are workers.
    assert stats["most_at_once"] >= 100
    # Each coroutine's print and logs are in its own log, and only there.
    text = door(ws).runs.logs(r.id, "fetch[1003]")[0].text()
    assert "fetching 1003" in text and "asked for 1003" in text
    assert "slow server for 1003" in text
    assert "1503" not in text and "fetching 3\n" not in text
    # httpx logs each request at INFO: the line of 1004's request is in 1004's log alone.
    quiet = door(ws).runs.logs(r.id, "fetch[1004]")[0].text()
    assert quiet.count("HTTP Request: GET") == 1 and "/1004 " in quiet and "fetching" not in quiet
    assert r.state == RunState.FAILED


def test_an_async_task_that_fails_once_is_retried_on_its_own(tmp_path, workspaces) -> None:
    ws = _open(workspaces, tmp_path / "p", """
import asyncio, os
from pathlib import Path
from legato import pipeline, task

@task
def numbers() -> list[int]:
    return list(range(300))

@task(retries=2, concurrency=50)
async def flaky(x: int) -> int:
    await asyncio.sleep(0.01)
    mark = Path(__file__).parent / f"seen-{x}"
    if x % 100 == 42 and not mark.exists():
        mark.touch()
        raise ConnectionError(f"reset by peer at {x}")
    return x * 2

@pipeline
def retries():
    flaky.map(numbers())
""")
    r = door(ws).runs.run_pipeline("retries", {})
    assert r.state == RunState.SUCCEEDED, r.error
    for x in (42, 142, 242):
        attempts = door(ws).runs.attempts(r.id, f"flaky[{x}]")
        assert [a.outcome for a in attempts] == ["failed", "succeeded"]
        assert attempts[0].error == f"ConnectionError: reset by peer at {x}"
        assert door(ws).runs.output(r.id, f"flaky[{x}]") == 2 * x
    assert len(door(ws).runs.attempts(r.id, "flaky[43]")) == 1


ALONE = """
import asyncio
from legato import pipeline, task

@task
async def wait_and_add(x: int) -> int:
    await asyncio.sleep(0.01)
    print("added")
    return x + 1

@task(timeout=0.5)
async def hangs() -> None:
    await asyncio.sleep(600)

@pipeline
def alone():
    wait_and_add(wait_and_add(1))

@pipeline
def stuck():
    hangs()
"""


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_an_async_task_on_its_own_runs_in_either_mode(tmp_path, workspaces, mode: str) -> None:
    ws = _open(workspaces, tmp_path / "p", ALONE, extra=f'mode = "{mode}"\n')
    r = door(ws).runs.run_pipeline("alone", {})
    assert r.state == RunState.SUCCEEDED, r.error
    assert door(ws).runs.output(r.id, "wait_and_add_2") == 3
    assert "added" in door(ws).runs.logs(r.id, "wait_and_add")[0].text()
    if mode == "process":
        r = door(ws).runs.run_pipeline("stuck", {})
        assert r.state == RunState.FAILED
        assert [a.outcome for a in door(ws).runs.attempts(r.id, "hangs")] == ["timeout"]


def test_a_worker_keeps_one_event_loop_for_its_async_attempts(tmp_path, workspaces) -> None:
    ws = _open(workspaces, tmp_path / "p", """
import asyncio, os
from legato import pipeline, task

@task
def numbers() -> list[int]:
    return list(range(1200))

@task(concurrency=20)
async def where(x: int) -> list[int]:
    await asyncio.sleep(0)
    return [os.getpid(), id(asyncio.get_running_loop())]

@pipeline
def loops():
    where.map(numbers())
""", extra="")
    r = door(ws).runs.run_pipeline("loops", {})
    assert r.state == RunState.SUCCEEDED, r.error
    seen = {tuple(door(ws).runs.output(r.id, f"where[{i}]")) for i in range(0, 1200, 7)}
    # Many batches ran, on two workers; each worker used one loop for all of its batches,
    # so a client a task keeps at module level stays usable.
    loops_of: dict[int, set[int]] = {}
    for pid, loop in seen:
        loops_of.setdefault(pid, set()).add(loop)
    assert all(len(loops) == 1 for loops in loops_of.values()), loops_of
