"""Fixtures shared by the service tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import workspace_on


@pytest.fixture
def spaces(project: Path) -> Iterator[list[Workspace]]:
    """Two workspaces on the test module's ``project``: two processes' view of one store."""
    made = [Workspace(project), Workspace(project)]
    yield made
    for ws in made:
        ws.close()


@pytest.fixture(params=BACKENDS)
def backend_ws(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Workspace]:
    """A workspace of the test module's ``CODE`` on each store backend, its clock stopped at
    the module's ``NOW``."""
    url = store_url_for(request.param)
    with workspace_on(url, tmp_path / "proj", request.module.CODE, request.module.NOW) as ws:
        yield ws
