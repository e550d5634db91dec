"""The fingerprint of loaded code: what counts as the project's code, and seeing it change."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import legato
from legato.fingerprint import Fingerprint, is_user_file
from legato.loader import load_project

FLOW = """
import helperlib
from legato import pipeline, task

@task(in_process=True)
def step() -> str:
    return helperlib.WORD

@pipeline
def flow():
    step()
"""


def test_user_files_are_neither_stdlib_nor_site_packages_nor_legato(tmp_path: Path) -> None:
    assert not is_user_file(os.__file__)
    assert not is_user_file(pytest.__file__)
    assert not is_user_file(legato.__file__)
    assert is_user_file(str(tmp_path / "flows.py"))


def test_an_edit_a_new_module_and_a_touch(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("X = 1\n")
    fp = Fingerprint.take(tmp_path, [str(pkg / "a.py")], [str(pkg)])
    assert not fp.changed()
    assert [f.path for f in fp.files] == ["pkg/a.py"]

    (pkg / "a.py").write_text("X = 2\n")  # same size, within one timestamp tick perhaps
    assert fp.changed()
    assert fp.differs_from(fp.again())

    fp = fp.again()
    os.utime(pkg / "a.py", ns=(1, 1))
    assert fp.changed() and not fp.differs_from(fp.again())  # touched, same code

    fp = fp.again()
    (pkg / "b.py").write_text("def oops(:\n")  # a new module, even one that cannot import
    assert fp.changed() and fp.differs_from(fp.again())


def test_a_local_package_outside_the_project_is_part_of_its_code_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "libs"
    lib.mkdir()
    (lib / "helperlib.py").write_text("WORD = 'one'\n")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "legato.toml").write_text('[project]\nname = "p"\nmodules = ["flows"]\n')
    (root / "flows.py").write_text(FLOW)
    monkeypatch.syspath_prepend(str(lib))
    try:
        first = load_project(root)
        assert first.fingerprint is not None
        assert str(lib / "helperlib.py") in {f.path for f in first.fingerprint.files}
        assert not first.fingerprint.changed()

        (lib / "helperlib.py").write_text("WORD = 'two, longer'\n")
        assert first.fingerprint.changed()
        second = load_project(root)
        assert second.pipelines["flow"].code_version != first.pipelines["flow"].code_version
        assert sys.modules["helperlib"].WORD == "two, longer"  # imported again, not cached
    finally:
        sys.modules.pop("helperlib", None)
