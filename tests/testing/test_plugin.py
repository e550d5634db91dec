"""The pytest plugin: its fixtures used by a small project's own tests, run by a real
``pytest`` in a subprocess (the plugin is found through its ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.testing.subprocess_pytest import run_pytest

FLOWS = '''
from legato import Context, pipeline, task

@task
def greet(ctx: Context, name: str) -> str:
    ctx.log.info("greeting %s", name)
    return f"hello {name}"

@task
def shout(text: str) -> str:
    if text.endswith("!"):
        raise ValueError("already shouting")
    return text.upper()

@pipeline
def hello(name: str = "world"):
    shout(greet(name))
'''

TESTS = '''

def test_by_name_from_the_project_this_file_is_in(legato_run):
    result = legato_run("hello", params={"name": "plugin"})
    assert result.output_of("shout") == "HELLO PLUGIN"
    assert "greeting plugin" in result.tasks["greet"].log


def test_by_object(legato_run):
    import flows

    assert legato_run(flows.hello).output_of("greet") == "hello world"


def test_a_copy_with_a_module_changed(legato_project, legato_run, tmp_path):
    copy = legato_project(files={"extra.py": "VALUE = 1\\n"})
    assert copy.parent == tmp_path and (copy / "flows.py").is_file()
    assert not (copy / "tests").joinpath("__pycache__").exists()
    edited = (copy / "flows.py").read_text().replace('f"hello {name}"', 'f"hi {name}"')
    (copy / "flows.py").write_text(edited)
    assert legato_run("hello", project=copy).output_of("shout") == "HI WORLD"


def test_a_new_project_from_files(legato_project, legato_run):
    made = legato_project.new({"solo.py": (
        "from legato import pipeline, task\\n"
        "@task\\ndef one() -> int:\\n    return 1\\n"
        "@pipeline\\ndef solo():\\n    one()\\n"
    )})
    assert legato_run("solo", project=made).output_of("one") == 1


def test_a_harness_runs_twice_on_one_store(legato_harness):
    harness = legato_harness()
    first = harness.run("hello")
    again = harness.run("hello", params={"name": "again"})
    assert harness.result(first.run_id).succeeded and again.output_of("greet") == "hello again"


def test_failing_on_purpose(legato_run):
    legato_run("hello", params={"name": "you!"}).raise_for_failure()
'''


def test_the_fixtures_in_a_projects_own_tests(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "tests").mkdir(parents=True)
    (project / "legato.toml").write_text('[project]\nmodules = ["flows"]\n')
    (project / "flows.py").write_text(FLOWS)
    (project / "tests" / "test_flows.py").write_text(TESTS)
    out = run_pytest(["tests"], cwd=project, pythonpath=project)  # `import flows`
    assert "1 failed, 5 passed" in out, out
    # The failure a user sees: the run's state and the failed task's traceback.
    assert "RunFailed: run " in out and "of 'hello' is failed" in out, out
    assert "-- task 'shout' failed: ValueError: already shouting" in out, out
    assert 'raise ValueError("already shouting")' in out, out
    # Nothing was written into the project: every run used a store under tmp_path.
    assert not (project / ".legato").exists()


def test_a_name_needs_a_project_above_the_test_file(legato_run: Callable[..., object]) -> None:
    with pytest.raises(FileNotFoundError, match=r"no legato.toml in .*testing or any folder above"):
        legato_run("hello")
