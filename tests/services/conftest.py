"""Fixtures shared by the service tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.services.workspace import Workspace


@pytest.fixture
def spaces(project: Path) -> Iterator[list[Workspace]]:
    """Two workspaces on the test module's ``project``: two processes' view of one store."""
    made = [Workspace(project), Workspace(project)]
    yield made
    for ws in made:
        ws.close()
