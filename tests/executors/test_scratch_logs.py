"""Attempt logs in worker processes are made only when there is something in them: a silent
attempt leaves no file, a long one can be followed while it runs, and a killed or crashed
one keeps what it printed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from legato import pipeline, task
from legato.executors.interface import AttemptSpec
from legato.executors.local import LocalExecutor
from legato.executors.scratch_log import SCRATCH_FOLDER, ScratchLogs
from legato.results import ResultStore


@task
def silent() -> int:
    return 1


@task
def say(text: str) -> int:
    print(text)
    return 1


@task
def say_then_wait(text: str, said: str, go: str) -> int:
    print(text, flush=True)
    Path(said).touch()
    while not os.path.exists(go):
        time.sleep(0.01)
    return 1


@task
def wait_quietly(go: str) -> int:
    while not os.path.exists(go):
        time.sleep(0.01)
    return 1


@task
def say_then_die(text: str) -> None:
    print(text, flush=True)
    os._exit(3)


@pipeline
def p() -> None:
    silent()
    say("")
    say_then_wait("", "", "")
    wait_quietly("")
    say_then_die("")


PIPELINES = {"p": p}


class Logs:
    def __init__(self, root: Path) -> None:
        self.root = root / "logs"
        self.n = 0

    def spec(self, node: str, *args: str) -> AttemptSpec:
        from legato.executors.interface import Value

        self.n += 1
        key = f"{node}_{self.n}"
        return AttemptSpec(
            run_id="run1", pipeline="p", node=node, task_key=key, map_index=None, attempt=1,
            args=tuple(Value(a) for a in args), kwargs=(), params={}, partition=None,
            result_key=f"run1/{key}", log_path=str(self.root / "run1" / f"{key}.1.log"),
            timeout=None,
        )

    def scratch_files(self) -> list[str]:
        folder = self.root / SCRATCH_FOLDER
        return sorted(os.listdir(folder)) if folder.exists() else []


def _executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publish_after: str) -> LocalExecutor:
    # Read by the workers when they start (they inherit the environment).
    monkeypatch.setenv("LEGATO_LOG_PUBLISH_AFTER", publish_after)
    ex = LocalExecutor(workers=1, results=ResultStore(tmp_path / "results"))
    ex.start(PIPELINES)
    return ex


def _status(ex: LocalExecutor) -> str:
    """The status of the one attempt running, once it ends."""
    out: list = []
    while not out:
        out = ex.wait(30)
    (one,) = out
    return one.status


def _run(ex: LocalExecutor, spec: AttemptSpec) -> str:
    ex.submit(spec)
    return _status(ex)


def _wait_for(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def test_a_silent_attempt_leaves_no_file_and_a_chatty_one_its_own(tmp_path, monkeypatch):
    logs = Logs(tmp_path)
    ex = _executor(tmp_path, monkeypatch, "3600")
    try:
        quiet = logs.spec("silent")
        assert _run(ex, quiet) == "succeeded"
        assert not os.path.exists(quiet.log_path)
        assert not (logs.root / "run1").exists()  # not even the run's folder
        first = logs.spec("say", "first words")
        assert _run(ex, first) == "succeeded"
        quiet_again = logs.spec("silent")
        assert _run(ex, quiet_again) == "succeeded"
        second = logs.spec("say", "second words")
        assert _run(ex, second) == "succeeded"
        # Each log holds its own attempt's output only: the scratch file was not reused.
        assert Path(first.log_path).read_text() == "first words\n"
        assert Path(second.log_path).read_text() == "second words\n"
        assert not os.path.exists(quiet_again.log_path)
        assert os.stat(first.log_path).st_mode & 0o777 == 0o600
        assert logs.scratch_files() == []  # given to the last attempt; a new one when needed
        assert _run(ex, logs.spec("silent")) == "succeeded"
        assert len(logs.scratch_files()) == 1  # the worker's own, while it lives
    finally:
        ex.shutdown()
    assert logs.scratch_files() == []  # gone with the worker


def _start_talker(ex: LocalExecutor, logs: Logs, text: str) -> tuple[AttemptSpec, Path, Path]:
    """Start an attempt that prints ``text``, touches ``said`` and waits for ``go``."""
    said, go = logs.root.parent / "said", logs.root.parent / "go"
    spec = logs.spec("say_then_wait", text, str(said), str(go))
    ex.submit(spec)
    return spec, said, go


def test_a_long_attempt_can_be_followed_while_it_runs(tmp_path, monkeypatch):
    logs = Logs(tmp_path)
    ex = _executor(tmp_path, monkeypatch, "0.05")
    try:
        spec, _, go = _start_talker(ex, logs, "still working")
        log = Path(spec.log_path)
        _wait_for(lambda: log.exists() and "still working" in log.read_text(), "the live log")
        go.touch()
        assert _status(ex) == "succeeded"
        assert log.read_text() == "still working\n"
        # A long attempt that prints nothing has its (empty) log too, and the next attempt
        # writes to a file of its own.
        go.unlink()
        quiet = logs.spec("wait_quietly", str(go))
        ex.submit(quiet)
        _wait_for(lambda: os.path.exists(quiet.log_path), "the quiet attempt's log")
        go.touch()
        assert _status(ex) == "succeeded"
        after = logs.spec("say", "next words")
        assert _run(ex, after) == "succeeded"
        assert Path(after.log_path).read_text() == "next words\n"
        assert Path(quiet.log_path).read_text() == ""
    finally:
        ex.shutdown()


def test_a_killed_attempt_keeps_what_it_printed(tmp_path, monkeypatch):
    logs = Logs(tmp_path)
    # Never published while running: what the log holds came from the killed worker's file.
    ex = _executor(tmp_path, monkeypatch, "3600")
    try:
        spec, said, _ = _start_talker(ex, logs, "before the kill")
        _wait_for(said.exists, "the task to print")
        assert not os.path.exists(spec.log_path)
        ex.kill("run1", spec.task_key, 1, "timeout", "timed out after 1s")
        assert _status(ex) == "timeout"
        text = Path(spec.log_path).read_text()
        assert text == "before the kill\nlegato: attempt timeout: timed out after 1s\n"
        crash = logs.spec("say_then_die", "last words")
        assert _run(ex, crash) == "crashed"
        assert Path(crash.log_path).read_text() == (
            "last words\nlegato: worker process exited with code 3\n"
        )
        assert _run(ex, logs.spec("silent")) == "succeeded"
        assert len(logs.scratch_files()) == 1  # the dead workers' files were removed
    finally:
        ex.shutdown()


def test_a_dead_process_tree_leaves_no_scratch_file_behind(tmp_path):
    folder = tmp_path / "logs" / SCRATCH_FOLDER
    folder.mkdir(parents=True)
    import socket

    gone = folder / f"{socket.gethostname()}-{2**22 + 12345}.log"  # above pid_max: no such process
    gone.write_text("output of an attempt whose driver was killed\n")
    mine = folder / f"{socket.gethostname()}-{os.getpid()}.log"
    other_host = folder / "elsewhere-1.log"
    other_host.write_text("")
    logs = ScratchLogs()
    fd = logs.begin(str(tmp_path / "logs" / "run1" / "a.1.log"))
    os.write(fd, b"hello\n")
    logs.end()
    assert sorted(p.name for p in folder.iterdir()) == ["elsewhere-1.log"]
    assert (tmp_path / "logs" / "run1" / "a.1.log").read_text() == "hello\n"
    assert not mine.exists()  # published under the attempt's name, then let go
    logs.close()
