"""Workspace.refresh: changed code is loaded again; a module broken by an edit keeps serving."""

from __future__ import annotations

from pathlib import Path

from legato.services.workspace import Reload, Workspace
from tests.helpers import make_project

CODE = """
from legato import pipeline, task

@task(in_process=True)
def step() -> str:
    return "{label}"

@pipeline
def {name}():
    step()
"""


def test_refresh_loads_changed_code_only_when_it_changed(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE.format(label="one", name="flow"))
    heard: list[Reload] = []
    with Workspace(root) as ws:
        ws.on_reload(heard.append)
        before = ws.pipeline("flow")
        assert ws.refresh() is None
        (root / "flows.py").write_text(CODE.format(label="two!", name="flow"))
        done = ws.refresh()
        assert done is not None and done.pipelines == 1 and heard == [done]
        assert "code changed: reloaded 1 pipelines" in done.describe()
        after = ws.pipeline("flow")
        assert after is not before and after.code_version != before.code_version
        assert ws.refresh() is None


def test_a_module_broken_by_an_edit_keeps_its_last_good_pipelines(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE.format(label="one", name="flow"))
    (root / "legato.toml").write_text(
        (root / "legato.toml").read_text().replace('["flows"]', '["flows", "other"]')
    )
    (root / "other.py").write_text(CODE.format(label="x", name="other_flow"))
    with Workspace(root) as ws:
        good = ws.pipeline("flow")
        (root / "flows.py").write_text("def broken(:\n")
        (root / "other.py").write_text(CODE.format(label="y", name="other_flow"))
        done = ws.refresh()
        assert done is not None
        assert ws.pipeline("flow") is good  # still served, on its last good code
        assert ws.pipeline("other_flow").code_version != ""
        [error] = ws.project.errors
        assert error.module == "flows"
        assert "flows.py:1: SyntaxError" in error.message
        assert "serving the last good version" in error.message
        assert "flows.py:1" in done.describe()

        (root / "flows.py").write_text(CODE.format(label="fixed", name="flow"))
        assert ws.refresh() is not None
        assert ws.project.errors == []
        assert ws.pipeline("flow") is not good
