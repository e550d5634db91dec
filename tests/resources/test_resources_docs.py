"""docs/resources.md: its project (legato.toml, kinds.py, flows.py) loads, checks and runs as
the page says, and its other examples are what Legato reads."""

from __future__ import annotations

import json
import re
import sqlite3
import tomllib
from pathlib import Path

import pytest

from legato.loader import load_project
from legato.resources.settings import references, resolve
from tests.helpers import cli

DOC = Path(__file__).parents[2] / "docs" / "resources.md"


def blocks(language: str) -> list[str]:
    """The page's fenced blocks of ``language`` ("" for those that name none), in order."""
    found: list[str] = []
    current: list[str] | None = None
    fence = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if current is None and line.startswith("```"):
            current, fence = [], line[3:].strip()
        elif current is not None and line == "```":
            if fence == language:
                found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def python(name: str) -> str:
    (found,) = [b for b in blocks("python") if b.startswith(f"# {name}")]
    return found


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "shop"
    root.mkdir()
    toml = blocks("toml")[0]
    (root / "legato.toml").write_text(toml + "\n[executor]\nworkers = 1\n", encoding="utf-8")
    (root / "kinds.py").write_text(python("kinds.py"), encoding="utf-8")
    (root / "flows.py").write_text(python("flows.py"), encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "orders.db") as db:
        db.execute("create table orders (id integer, day text, total real)")
        db.execute("create table totals (amount real)")
        db.executemany(
            "insert into orders values (?, ?, ?)",
            [(1, "2026-11-20", 10.5), (2, "2026-11-20", 4.5), (3, "2026-11-21", 99.0)],
        )
    db.close()
    return root, data


def test_the_pages_project_runs_and_checks(tmp_path: Path) -> None:
    root, data = _project(tmp_path)
    env = {"SHOP_DATA": str(data)}
    ran = cli("run", "daily_orders", project=root, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with sqlite3.connect(data / "orders.db") as db:
        assert db.execute("select amount from totals").fetchall() == [(15.0,)]
    db.close()
    (sh,) = blocks("sh")
    commands = [line.split()[1:] for line in sh.splitlines() if line.startswith("legato ")]
    assert len(commands) == 4
    outputs = {}
    for args in commands:
        done = cli(*args, project=root, env=env)
        assert done.returncode == 0, done.stderr
        outputs[" ".join(args)] = done.stdout
    shown = [b for b in blocks("") if b.startswith("ok  ")]
    assert outputs["resources check"].startswith(shown[0].split(" 0.00s")[0])
    (listed,) = json.loads(outputs["resources --json"])
    assert listed["tasks"] == ["daily_orders.extract", "daily_orders.total"]
    assert listed["settings"]["path"] == "${env:SHOP_DATA}/orders.db"


def test_the_load_error_of_an_undeclared_resource_reads_as_the_page_says(tmp_path: Path) -> None:
    root, _ = _project(tmp_path)
    toml = (root / "legato.toml").read_text().replace("[resources.orders]", "[resources.other]")
    (root / "legato.toml").write_text(toml, encoding="utf-8")
    project = load_project(root)
    said = re.search(r"`flows\.py:(\d+): (pipeline .*?)`", DOC.read_text(), re.DOTALL)
    assert said is not None
    message = " ".join(said.group(2).split())
    errors = [e.message for e in project.errors if "called wrongly" in e.message]
    assert errors == [f"{root / 'flows.py'}:{said.group(1)}: {message}"]


@pytest.mark.parametrize("index", [1, 2])
def test_the_other_legato_toml_examples_resolve(index: int) -> None:
    data = tomllib.loads(blocks("toml")[index])
    for name, table in data["resources"].items():
        wanted = {(what, ref) for _, what, ref in references(table)}
        secrets = {ref: f"<{ref}>" for what, ref in wanted if what == "secret"}
        env = {ref: f"<{ref}>" for what, ref in wanted if what == "env"}
        resolved = resolve(name, table, secret=secrets.__getitem__, env=env)
        assert "kind" not in resolved.settings and "pool" not in resolved.settings
        assert resolved.secret_values == set(secrets.values())


def test_the_entry_point_example_is_of_legatos_group() -> None:
    data = tomllib.loads(blocks("toml")[3])
    assert set(data["project"]["entry-points"]) == {"legato.resources"}
