"""Loading a project: a broken module costs only its own pipelines."""

from __future__ import annotations

import textwrap
from pathlib import Path

from legato.loader import load_project

GOOD = """
from legato import pipeline, task

@task(in_process=True)
def step() -> int:
    return 1

@pipeline
def {name}():
    step()
"""


def _package(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "legato.toml").write_text('[project]\nname = "p"\nmodules = ["walk"]\n')
    pkg = root / "walk"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_submodule_with_a_syntax_error_leaves_the_others_loaded(tmp_path: Path) -> None:
    root = _package(
        tmp_path / "proj",
        {
            "good.py": GOOD.format(name="good_walk"),
            "broken.py": "def oops(:\n    pass\n",
            "sub/__init__.py": "",
            "sub/deep.py": GOOD.format(name="deep_walk"),
        },
    )
    project = load_project(root)
    assert sorted(project.pipelines) == ["deep_walk", "good_walk"]
    [error] = project.errors
    assert error.module == "walk.broken"
    assert "broken.py:1" in error.message and "SyntaxError" in error.message


def test_a_submodule_with_a_missing_import_leaves_the_others_loaded(tmp_path: Path) -> None:
    root = _package(
        tmp_path / "proj",
        {
            "good.py": GOOD.format(name="good_walk"),
            "needs.py": "import no_such_module_anywhere\n",
            "badpkg/__init__.py": "raise RuntimeError('package init fails')\n",
            "badpkg/inner.py": GOOD.format(name="inner_walk"),
        },
    )
    project = load_project(root)
    assert sorted(project.pipelines) == ["good_walk"]
    by_module = {e.module: e.message for e in project.errors}
    assert "no_such_module_anywhere" in by_module["walk.needs"]
    assert "package init fails" in by_module["walk.badpkg"]
    assert "needs.py:1" in by_module["walk.needs"]
