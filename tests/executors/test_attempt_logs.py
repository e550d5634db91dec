"""An attempt's log is capped (its head and its tail kept, the cut marked) on both executors,
and a log whose volume filled up says so, in the log and in the attempt's record."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.domain.states import RunState
from legato.services.workspace import Workspace
from tests.helpers import cli, door, make_project, small_tmpfs

CAP = 64 * 1024
LINES = 20_000  # "line 00001" .. "line 20000": 220,000 bytes

FLOWS = f"""
from legato import pipeline, task


def shout() -> int:
    for i in range(1, {LINES} + 1):
        print(f"line {{i:05d}}")
    return 1


@task
def loud() -> int:
    return shout()


@task(in_process=True)
def loud_here() -> int:
    return shout()


@task
def endless() -> int:
    # 2 MB through print; then how big its log (fd 1 in a worker process) is right now.
    import os
    for i in range(100_000):
        print(f"endless {{i:09d}}")
    return os.fstat(1).st_size


@pipeline
def chatty():
    loud()


@pipeline
def flood():
    endless()


@pipeline
def chatty_here():
    loud_here()
"""

KINDS = [
    pytest.param(("local", "chatty"), id="worker-process"),
    pytest.param(("local", "chatty_here"), id="driver-thread"),
    pytest.param(("dask", "chatty"), id="dask"),
]


def _project(root: Path, kind: str, logs: str = "") -> Path:
    extra = f'kind = "{kind}"\n\n[logs]\nmax_attempt_bytes = {CAP}\n{logs}'
    return make_project(root, FLOWS, workers=1, extra=extra)


@pytest.fixture
def ws_of() -> Iterator[list[Workspace]]:
    opened: list[Workspace] = []
    yield opened
    for ws in opened:
        ws.close()


@pytest.mark.parametrize("case", KINDS)
def test_a_log_past_the_cap_keeps_its_head_and_tail_and_says_what_was_cut(
    tmp_path: Path, case: tuple[str, str], ws_of: list[Workspace]
) -> None:
    kind, pipeline = case
    if kind == "dask":
        pytest.importorskip(
            "distributed", reason='needs the dask extra: pip install "legato[dask]"'
        )
    project = _project(tmp_path / "proj", kind)
    ws = Workspace(project)
    ws_of.append(ws)
    run = door(ws).runs.run_pipeline(pipeline)
    assert run.state == RunState.SUCCEEDED, run.error

    [entry] = door(ws).runs.logs(run.id)
    data = entry.path.read_bytes()
    text = data.decode()
    lines = text.splitlines()
    assert lines[0] == "line 00001"
    assert lines[-1] == f"line {LINES:05d}"
    assert "line 10000" not in text  # the middle is gone
    assert len(data) <= CAP + 200
    [marker] = [line for line in lines if "bytes cut" in line]
    cut = int(marker.split("…", 1)[1].split("bytes cut", 1)[0].replace(",", ""))
    assert cut > LINES * 11 - CAP - 200
    assert entry.note is not None and "bytes cut" in entry.note


def test_the_cli_shows_that_a_log_was_cut(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj", "local")
    ran = cli("run", "chatty", project=project)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split("run ", 1)[1].split()[0]
    shown = cli("logs", run_id, project=project)
    assert shown.returncode == 0, shown.stderr
    head = shown.stdout.splitlines()[:3]
    assert any(line.startswith("log cut:") and "bytes cut" in line for line in head), head


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "vol", "1m") as mount:
        yield mount


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs: Linux only")
@pytest.mark.parametrize("case", KINDS)
def test_a_log_whose_volume_filled_up_says_it_was_cut(
    tmp_path: Path, small_volume: Path, case: tuple[str, str], ws_of: list[Workspace]
) -> None:
    kind, pipeline = case
    if kind == "dask":
        pytest.importorskip(
            "distributed", reason='needs the dask extra: pip install "legato[dask]"'
        )
    # The default cap (10 MB) is above the volume's size: only the full volume cuts this log.
    project = make_project(
        tmp_path / "proj",
        FLOWS.replace(f"range(1, {LINES} + 1)", "range(1, 200_001)"),
        workers=1,
        extra=f'kind = "{kind}"\n\n[logs]\ndir = "{small_volume}"\n',
    )
    ws = Workspace(project)
    ws_of.append(ws)
    run = door(ws).runs.run_pipeline(pipeline)
    assert run.state == RunState.SUCCEEDED, run.error  # a full log volume fails no task

    [entry] = door(ws).runs.logs(run.id)
    text = entry.path.read_text()
    assert text.startswith("line 00001\n")
    assert "line 200000" not in text
    last = text.rstrip("\n").splitlines()[-1]
    assert "this log was cut" in last and "volume is full" in last
    assert entry.note is not None and "volume was full" in entry.note
    shown = cli("logs", run.id, project=project)
    assert "volume was full" in shown.stdout


def test_the_api_and_the_web_ui_show_that_a_log_was_cut(
    tmp_path: Path, ws_of: list[Workspace]
) -> None:
    from fastapi.testclient import TestClient

    from legato.server.app import create_app
    from legato.services.actor import Actor

    ws = Workspace(_project(tmp_path / "proj", "local"))
    ws_of.append(ws)
    run = door(ws).runs.run_pipeline("chatty")
    client = TestClient(create_app(ws.door(Actor.http_client()), allowed_hosts=["testserver"]))
    r = client.get(f"/api/v1/runs/{run.id}/tasks/loud/attempts/1/log")
    assert r.status_code == 200
    assert len(r.content) <= CAP + 200
    assert "bytes cut" in r.headers["x-legato-log-note"]
    page = client.get(f"/runs/{run.id}?task=loud")
    assert 'class="log-note"' in page.text and "bytes cut from the middle" in page.text


def test_a_log_is_cut_while_it_grows_so_it_never_fills_the_volume(
    tmp_path: Path, ws_of: list[Workspace]
) -> None:
    ws = Workspace(_project(tmp_path / "proj", "local"))
    ws_of.append(ws)
    run = door(ws).runs.run_pipeline("flood")
    assert run.state == RunState.SUCCEEDED, run.error
    [row] = door(ws).runs.task_runs(run.id)
    from legato.domain.refs import ResultRef
    from legato.results.result_store import ResultStore

    assert row.result_format is not None
    seen = ResultStore(ws.config.results_url).get(ResultRef(row.result_uri, row.result_format))
    assert seen <= 2 * CAP + CAP // 2  # never much past twice the cap, not 2 MB
    [entry] = door(ws).runs.logs(run.id)
    text = entry.path.read_text()
    assert text.startswith("endless 000000000\n")
    assert text.rstrip("\n").splitlines()[-1] == "endless 000099999"
    [marker] = [line for line in text.splitlines() if "bytes cut" in line]
    cut = int(marker.split("…", 1)[1].split("bytes cut", 1)[0].replace(",", ""))
    # Every byte printed is in the log or counted as cut (the marker with its two newlines
    # is neither).
    assert cut == 100_000 * 18 - (len(text.encode()) - len(marker.encode()) - 2)
    assert entry.note is not None and f"{cut:,} bytes cut" in entry.note


def test_cutting_twice_counts_every_byte_cut(tmp_path: Path) -> None:
    from legato.executors.capture import LogWatch, finish_log, open_log

    path = tmp_path / "a.log"
    path.write_bytes(b"legato: an earlier note\n")  # not this attempt's output: kept
    fd = open_log(str(path))
    try:
        start = os.fstat(fd).st_size
        watch = LogWatch(fd, start, 1000)
        assert finish_log(watch) is None  # within the cap: whole
        written = 0
        for round_ in range(2):
            for i in range(300):
                line = f"{round_} {i:04d}\n".encode()
                os.write(fd, line)
                written += len(line)
            watch.apply_cap()
        note = finish_log(watch)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert data.startswith(b"legato: an earlier note\n0 0000\n")
    assert data.endswith(b"1 0299\n")
    [marker] = [line for line in data.decode().splitlines() if "bytes cut" in line]
    kept = len(data) - start - len(marker.encode()) - 2
    assert f"… {written - kept:,} bytes cut" in marker
    assert note is not None and f"{written - kept:,} bytes cut" in note
