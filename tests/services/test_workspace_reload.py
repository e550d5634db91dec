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
        assert "code changed: reloaded 1 pipeline (" in done.describe()
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


def test_code_changes_list_the_files_changed_since_the_previous_run(tmp_path: Path) -> None:
    from tests.helpers import door

    root = make_project(tmp_path / "proj", CODE.format(label="one", name="flow"))
    with Workspace(root) as ws:
        first = door(ws).runs.create_run("flow")
        same = door(ws).runs.create_run("flow")
        assert door(ws).catalog.code_changes(same.id).same_code
        (root / "helper.py").write_text("WORD = 'two'\n")
        (root / "flows.py").write_text("import helper\n" + CODE.format(label="two", name="flow"))
        second = door(ws).runs.create_run("flow")
        assert second.code_version != first.code_version

        changes = door(ws).catalog.code_changes(second.id)
        assert changes.known and changes.previous == same
        change, added = changes.changes
        assert (change.path, change.change) == ("flows.py", "changed")
        assert change.diff is not None
        assert '-    return "one"\n' in change.diff and '+    return "two"\n' in change.diff
        assert (added.path, added.change) == ("helper.py", "added")
        assert added.diff is not None and "+WORD = 'two'\n" in added.diff
        assert changes.files == ("flows.py", "helper.py")

        first_changes = door(ws).catalog.code_changes(first.id)
        assert first_changes.previous is None and first_changes.changes == ()


def test_a_project_that_cannot_load_at_all_keeps_serving_what_it_had(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE.format(label="one", name="flow"))
    toml = (root / "legato.toml").read_text()
    with Workspace(root) as ws:
        good = ws.pipeline("flow")
        (root / "legato.toml").write_text("[project\n")
        (root / "flows.py").write_text(CODE.format(label="two", name="flow"))
        done = ws.refresh()
        assert done is not None and done.problem is not None
        assert "cannot be loaded" in done.describe()
        assert ws.pipeline("flow") is good
        assert ws.refresh() is None  # said once, not on every look

        (root / "legato.toml").write_text(toml)
        done = ws.refresh()
        assert done is not None and done.problem is None
        assert ws.pipeline("flow").code_version != good.code_version


def test_the_pipelines_pages_see_an_edit_without_a_daemon_loop(tmp_path: Path) -> None:
    from tests.helpers import door

    root = make_project(tmp_path / "proj", CODE.format(label="one", name="flow"))
    with Workspace(root) as ws:
        assert [p.name for p in door(ws).catalog.pipelines()] == ["flow"]
        (root / "flows.py").write_text(CODE.format(label="one", name="renamed"))
        assert [p.name for p in door(ws).catalog.pipelines()] == ["renamed"]
        (root / "extra.py").write_text("import nowhere_to_be_found\n")
        (root / "legato.toml").write_text(
            (root / "legato.toml").read_text().replace('["flows"]', '["flows", "extra"]')
        )
        (root / "flows.py").write_text(CODE.format(label="two", name="renamed"))
        assert [e["module"] for e in door(ws).catalog.load_errors()] == ["extra"]


def test_a_script_beside_the_modules_is_not_code_of_the_project(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE.format(label="one", name="flow"))
    (root / "script.py").write_text("print('a tool')\n")
    with Workspace(root) as ws:
        version = ws.pipeline("flow").code_version
        (root / "script.py").write_text("print('another tool, edited')\n")
        assert ws.refresh() is None
        assert ws.pipeline("flow").code_version == version
