"""The run page says which environment the run was made in."""

from __future__ import annotations

from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, door, make_project, signed_client


def test_the_run_page_shows_the_environment(tmp_path: Path) -> None:
    toml = '\n[env.staging.store]\nurl = "sqlite:///.legato/staging.db"\n'
    root = make_project(tmp_path / "p", ONE_TASK, extra=toml)
    with Workspace(root, env="staging") as ws:
        run = door(ws).runs.run_pipeline("etl")
        page = signed_client(ws, "viewer").get(f"/runs/{run.id}")
        assert page.status_code == 200, page.text
        assert '<span class="muted">environment</span> staging' in page.text
