"""``legato resources`` lists what the environment declares and who uses it; ``legato
resources check`` opens each, checks it, closes it, and exits 1 when one fails. The kind used
here comes from a package's entry point (a dist-info folder on PYTHONPATH), as a package
adding a kind would ship it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import cli, make_project
from tests.resources.kinds import SOURCE, closed, opened

FLOWS = """
from legato import pipeline, task

@task
def load(marks) -> None:
    pass

@task
def other(ctx) -> None:
    pass

@pipeline
def nightly():
    load()
    other()
"""


def _package(site: Path) -> None:
    """A package ``tallykind`` whose entry point adds the kind ``tally``."""
    (site / "tallykind").mkdir(parents=True)
    (site / "tallykind" / "__init__.py").write_text(SOURCE, encoding="utf-8")
    info = site / "tallykind-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tallykind\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[legato.resources]\ntally = tallykind:Tally\n")


def _project(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    site = tmp_path / "site"
    _package(site)
    marks = tmp_path / "marks"
    marks.mkdir()
    resources = f"""
[resources.marks]
kind = "tally"
folder = "{marks}"
password = "${{secret:marks_pw}}"

[resources.broken]
kind = "tally"
folder = "{tmp_path / 'missing'}/${{secret:marks_pw}}"
password = "written-in-plain"
"""
    root = make_project(tmp_path / "p", FLOWS, extra=resources)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return root, {"PYTHONPATH": path}, marks


def test_resources_lists_kind_masked_settings_and_the_tasks_using_them(tmp_path: Path) -> None:
    root, env, marks = _project(tmp_path)
    res = cli("resources", "--json", project=root, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [
        {
            "name": "broken",
            "kind": "tally",
            "settings": {
                "folder": f"{tmp_path / 'missing'}/${{secret:marks_pw}}",
                "password": "****",
            },
            "pool": None,
            "tasks": [],
        },
        {
            "name": "marks",
            "kind": "tally",
            "settings": {"folder": str(marks), "password": "${secret:marks_pw}"},
            "pool": None,
            "tasks": ["nightly.load"],
        },
    ]
    table = cli("resources", project=root, env=env)
    assert table.returncode == 0 and "nightly.load" in table.stdout
    assert "written-in-plain" not in table.stdout


def test_resources_check_says_ok_or_why_not_and_exits_1_on_a_failure(tmp_path: Path) -> None:
    root, env, marks = _project(tmp_path)
    cli("secrets", "set", "marks_pw", project=root, env=env, input="pw-of-marks")
    res = cli("resources", "check", "--json", project=root, env=env)
    assert res.returncode == 1, res.stderr
    by_name = {r["name"]: r for r in json.loads(res.stdout)}
    assert by_name["marks"]["ok"] is True
    assert by_name["marks"]["detail"] == f"folder {marks} is there"
    assert by_name["broken"]["ok"] is False
    # The secret's value in the reason is masked.
    assert by_name["broken"]["detail"] == f"OSError: no folder {tmp_path / 'missing'}/****"
    # Opened in the command's process, and closed again.
    (mark,) = opened(marks)
    assert closed(marks) == [f"closed-{mark.split('-')[1]}"]
    only = cli("resources", "check", "marks", project=root, env=env)
    assert only.returncode == 0 and only.stdout.startswith("ok  marks (tally): folder ")
    audit = cli("audit", "--json", project=root, env=env)
    reads = [e for e in json.loads(audit.stdout) if e["action"] == "secrets.read"]
    assert [e["target"] for e in reads] == ["marks_pw"] * 3


def test_resources_check_of_an_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    root, env, _ = _project(tmp_path)
    res = cli("resources", "check", "nope", project=root, env=env)
    assert res.returncode == 2 and "no resource named 'nope'" in res.stderr
