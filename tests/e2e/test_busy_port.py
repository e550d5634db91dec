"""A web port something else listens on: one line saying so, a non-zero exit, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli, make_project

CODE = """
from legato import pipeline, task

@task
def hello() -> str:
    return "hi"

@pipeline
def greet():
    hello()
"""


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 that this test listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["up", "web"])
def test_a_busy_port_is_one_line_and_a_failed_exit(
    tmp_path: Path, taken_port: int, command: str
) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    done = cli(command, "--port", str(taken_port), project=project, timeout=60)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.stderr.strip() == (
        f"error: port {taken_port} on 127.0.0.1 is in use; "
        "choose another with --port or LEGATO_PORT"
    ), done.stderr


def test_a_busy_port_from_legato_port_is_named(tmp_path: Path, taken_port: int) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    done = cli("up", project=project, timeout=60, env={"LEGATO_PORT": str(taken_port)})
    assert done.returncode != 0, done.stdout
    assert f"port {taken_port} on 127.0.0.1 is in use" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
