"""A full disk under the store: `legato run` fails at once with a line that says what is full
and what to free, instead of retrying for ever; once space is freed, `legato resume` finishes
the run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Daemons, cli, make_project, small_tmpfs

# Task `fill` writes into the store's volume until it is full, as another program would:
# the driver's next write to the store then finds no room.
CODE = """
import os
from legato import pipeline, task

@task
def fill() -> int:
    once = os.environ["LEGATO_TEST_FILLED"]  # outside the volume: it fills it once only
    if os.path.exists(once):
        return 1
    open(once, "w").close()
    with open(os.environ["LEGATO_TEST_FILL"], "ab") as fh:
        try:
            while True:
                fh.write(b"\\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return 1

@task
def after(x: int) -> int:
    return x + 1

@pipeline
def p():
    after(fill())
"""


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "vol", "2m") as mount:
        yield mount


def test_a_full_disk_fails_the_run_clearly_and_resume_finishes_it_once_freed(
    tmp_path: Path, small_volume: Path
) -> None:
    db = small_volume / "legato.db"
    project = make_project(tmp_path / "proj", CODE, extra=f'\n[store]\nurl = "sqlite:///{db}"\n')
    filler = small_volume / "filler"
    env = {"LEGATO_TEST_FILL": str(filler), "LEGATO_TEST_FILLED": str(tmp_path / "filled")}

    ran = cli("run", "p", project=project, env=env, timeout=60)
    assert ran.returncode != 0
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), ran.stderr
    message = lines[-1]
    assert "full" in message and str(db) in message and "legato resume" in message
    assert "retrying" not in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    run_id = message.split("legato resume ", 1)[1].split()[0].strip("`.,;")

    filler.unlink()  # the user frees space
    resumed = cli("resume", run_id, project=project, env=env, timeout=60)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    shown = cli("runs", "--json", project=project)
    assert '"succeeded"' in shown.stdout and run_id in shown.stdout


TICKING = """
from legato import pipeline, task

@task
def tick() -> int:
    return 1

@pipeline(schedule="every 1s")
def ticking():
    tick()
"""


def test_a_full_disk_stops_the_daemon_and_other_commands_with_one_line(
    tmp_path: Path, small_volume: Path, daemons: Daemons
) -> None:
    db = small_volume / "legato.db"
    project = make_project(tmp_path / "proj", TICKING, extra=f'\n[store]\nurl = "sqlite:///{db}"\n')
    up = daemons.up(project, command="scheduler")
    up.wait_output("run ", timeout=60)  # it drives runs of the schedule
    filler = small_volume / "filler"
    with open(filler, "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()

    submitted = cli("submit", "ticking", project=project)
    assert submitted.returncode == 2
    assert submitted.stderr.startswith("error: the disk holding the store is full")
    assert str(db) in submitted.stderr and "Traceback" not in submitted.stderr

    assert up.proc.wait(60) != 0  # not waited out as an outage
    out = up.output()
    assert "error: the disk holding the store is full" in out and "Traceback" not in out, out
