"""What the engine's tests share: projects made from a bit of code, with the helpers above it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import make_project

COMMON = """
import logging, os, time
from pathlib import Path
from legato import Context, FailNow, Skip, pipeline, task, when

HERE = Path(__file__).parent

def mark(name):
    with open(HERE / "marks.txt", "a") as fh:
        fh.write(name + "\\n")
"""


@pytest.fixture
def ws_factory(tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    opened: list[Workspace] = []

    def make(code: str, **kw: object) -> Workspace:
        root = make_project(tmp_path / "proj", COMMON + code, **kw)  # type: ignore[arg-type]
        ws = Workspace(root)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()
