"""`legato dev`: a saved edit reloads the code of the running server at once, ``--run``
launches the pipeline on the new code, load errors show on every page (and the stream that
keeps pages current says so) until fixed, and a run in flight finishes on its own code.

Each test starts a real `legato dev` and edits the project's files while it runs; what it
checks is what a user sees: the server's lines, the API, the pages, the runs' logs.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# The stats pipeline: count (waits for a file "gate" with wait=True), then average, which
# prints and marks its code's label.
from legato.domain.ids import run_folder
from tests.e2e.test_code_reload import code, edit
from tests.helpers import DaemonProcess, http_client, make_project, marks, wait_for

#: Line 5 of this module is not Python.
BROKEN = """
from legato import pipeline, task

@task
def count( -> list[int]:
    return [1, 2, 3]
"""


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"


def documented_args() -> list[str]:
    """The arguments of the `legato dev` command docs/guide.md's "The dev loop" shows."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("\n## The dev loop\n") :]
    section = section[: section.index("\n## ", 1)]
    [block] = re.findall(r"^```sh\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)
    [line] = block.strip().splitlines()
    args = shlex.split(line)
    assert args[:2] == ["legato", "dev"], line
    return args[2:]


class Dev:
    """A `legato dev` subprocess on a project, with an API client once it serves."""

    def __init__(self, project: Path, log: Path, *args: str) -> None:
        self.project = project
        self.proc = DaemonProcess(["dev", "--project", str(project), "--port", "0", *args], log)
        self.proc.wait_output("web UI at", timeout=30)
        found = re.search(r"web UI at (http://\S+?)/?\s", self.proc.output())
        assert found, self.proc.output()
        self.url = found.group(1)
        self.http = http_client(self.url, project)

    def queued(self, count: int) -> list[str]:
        """The ids of the first ``count`` runs the server said it queued (waits for them)."""
        pattern = re.compile(r"queued run (\S+) of stats")
        wait_for(
            lambda: len(pattern.findall(self.proc.output())) >= count,
            what=f"{count} runs queued",
        )
        return pattern.findall(self.proc.output())[:count]

    def finished(self, run_id: str, state: str = "succeeded") -> dict[str, Any]:
        """The run once it finished, which must be in ``state``."""
        runs: list[dict[str, Any]] = []

        def done() -> bool:
            runs[:] = [self.http.get(f"/api/v1/runs/{run_id}").json()["run"]]
            return runs[0]["state"] in ("succeeded", "failed", "canceled")

        wait_for(done, what=f"run {run_id} finished")
        assert runs[0]["state"] == state, runs[0]
        return runs[0]

    def task_state(self, run_id: str, node: str) -> str:
        detail = self.http.get(f"/api/v1/runs/{run_id}").json()
        return str(next((t["state"] for t in detail["tasks"] if t["node"] == node), "none"))

    def log_of(self, run_id: str, task: str) -> str:
        folder = self.project / ".legato" / "logs" / run_folder(run_id)
        return (folder / f"{task}.1.log").read_text()

    def code(self) -> dict[str, Any]:
        got = self.http.get("/api/v1/code")
        assert got.status_code == 200, got.text
        return dict(got.json())


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Any]:
    """``dev(project, *args)`` starts `legato dev`; each one is stopped after the test."""
    started: list[Dev] = []

    def start(project: Path, *args: str) -> Dev:
        one = Dev(project, tmp_path / f"dev{len(started) + 1}.log", *args)
        started.append(one)
        return one

    yield start
    for one in started:
        one.http.close()
        one.proc.stop()


def test_a_save_reloads_the_running_server_and_run_launches_the_new_code(
    tmp_path: Path, dev: Any
) -> None:
    project = make_project(tmp_path / "proj", code("one"))
    server = dev(project, *documented_args())  # the guide's command: --run stats
    server.proc.wait_output("watching 1 folder of code: saves reload at once")
    [first] = server.queued(1)  # --run launches once at start
    server.finished(first)
    before = server.code()
    assert before["loads"] == 0 and before["errors"] == []

    edit(project / "flows.py", code("two"))
    server.proc.wait_output("code changed: reloaded 1 pipeline (code ")
    second = server.queued(2)[1]  # and again on the edited code
    run = server.finished(second)

    after = server.code()
    assert after["loads"] == 1
    assert after["pipelines"]["stats"] != before["pipelines"]["stats"]
    assert run["code_version"] == after["pipelines"]["stats"]
    assert "from code two" in server.log_of(second, "average")
    assert marks(project / "marks.txt") == ["one", "two"]

    # A broken save launches nothing (the pipeline keeps its last good code); the fix does.
    edit(project / "flows.py", BROKEN)
    server.proc.wait_output("serving the last good version")
    edit(project / "flows.py", code("three"))
    third = server.queued(3)[2]
    server.finished(third)
    assert "from code three" in server.log_of(third, "average")
    assert marks(project / "marks.txt") == ["one", "two", "three"]
    assert server.proc.output().count("queued run ") == 3
    assert server.proc.proc.poll() is None  # the same process: reloaded, not restarted


def _stream(http: httpx.Client, seen: str, into: queue.Queue[dict[str, Any]]) -> None:
    # As the pages' script does: one change per stream, then ask again with its key. Ends
    # when the test closes the client or stops the server.
    with contextlib.suppress(httpx.HTTPError, RuntimeError):
        while True:
            params = {"seen": seen}
            with http.stream("GET", "/api/v1/code/stream", params=params, timeout=None) as got:
                for line in got.iter_lines():
                    if line.startswith("data: "):
                        state = json.loads(line[len("data: ") :])
                        into.put(state)
                        seen = state["key"]


def test_a_load_error_shows_on_every_page_at_once_and_clears_when_fixed(
    tmp_path: Path, dev: Any
) -> None:
    project = make_project(tmp_path / "proj", code("one"))
    server = dev(project)
    key = server.code()["key"]
    assert 'id="load-errors"' in server.http.get("/runs").text
    # What the pages' script follows to redraw the banner without a reload.
    changes: queue.Queue[dict[str, Any]] = queue.Queue()
    reader = httpx.Client(base_url=server.url, headers=dict(server.http.headers))
    threading.Thread(target=_stream, args=(reader, key, changes), daemon=True).start()

    edit(project / "flows.py", BROKEN)
    told = changes.get(timeout=30)
    [error] = told["errors"]
    where = f"{project / 'flows.py'}:5"
    assert error["module"] == "flows"
    assert error["where"] == where
    assert error["error"].startswith("SyntaxError:")
    assert "serving the last good version" in error["error"]
    for path in ("/", "/runs", "/queue", "/pipelines/stats"):
        page = server.http.get(path).text
        assert "1 module of the project failed to load" in page, path
        assert f"<code>flows</code>: <span class=\"message\">{where}: SyntaxError" in page, path
    # The fragment the script swaps in says the same.
    assert f"{where}: SyntaxError" in server.http.get("/load-errors").text
    # The pipeline stays served, on its last good code, so schedules and launches go on.
    assert [p["name"] for p in server.http.get("/api/v1/pipelines").json()] == ["stats"]

    edit(project / "flows.py", code("fixed"))
    cleared = changes.get(timeout=30)
    assert cleared["errors"] == [] and cleared["loads"] == 2
    assert "failed to load" not in server.http.get("/runs").text
    assert server.code()["errors"] == []
    reader.close()


def test_a_run_in_flight_finishes_on_its_code_while_the_edit_runs_the_new(
    tmp_path: Path, dev: Any
) -> None:
    project = make_project(tmp_path / "proj", code("old", wait=True))
    server = dev(project, "--run", "stats")
    [old] = server.queued(1)
    wait_for(lambda: server.task_state(old, "count") == "running", what="the old run waiting")

    edit(project / "flows.py", code("new"))  # no longer waits for the gate
    new = server.queued(2)[1]
    new_run = server.finished(new)
    assert server.task_state(old, "count") == "running"  # the old run still waits
    (project / "gate").write_text("open")
    old_run = server.finished(old)

    assert "from code old" in server.log_of(old, "average")
    assert "from code new" in server.log_of(new, "average")
    assert sorted(marks(project / "marks.txt")) == ["new", "old"]
    assert old_run["code_version"] != new_run["code_version"]
    assert new_run["code_version"] == server.code()["pipelines"]["stats"]
