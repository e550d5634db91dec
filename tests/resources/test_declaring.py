"""What a project says about its resources is checked when it loads: a task asking for a
resource no ``[resources.NAME]`` declares, an unknown kind, a resource's pool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

import legato
from legato import DefinitionError, pipeline, task
from legato.loader import load_project
from tests.helpers import make_project
from tests.resources.kinds import SOURCE

FLOWS = """
from __future__ import annotations

from typing import Annotated

import legato
from legato import pipeline, task

@task
def load(rows: list, shop_db) -> int:
    return len(rows)

@task
def save(n: int, store: Annotated[object, legato.resource("warehouse")]) -> None:
    pass

@pipeline
def nightly():
    save(load([1, 2]))
"""


TALLY = '[resources.{}]\nkind = "tally:Tally"\n'


def _project(root: Path, extra: str = "") -> Path:
    make_project(root, FLOWS, extra=extra)
    (root / "tally.py").write_text(SOURCE, encoding="utf-8")
    return root


def _line(root: Path, text: str) -> int:
    lines = (root / "flows.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


def test_resources_asked_for_and_declared_load(tmp_path: Path) -> None:
    extra = TALLY.format("shop_db") + TALLY.format("warehouse")
    project = load_project(_project(tmp_path / "p", extra))
    assert project.errors == []
    nodes = project.pipelines["nightly"].graph.nodes
    assert nodes["load"].resources == (("shop_db", "shop_db"),)
    assert nodes["save"].resources == (("store", "warehouse"),)


def test_an_undeclared_resource_is_a_load_error_at_the_call(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    project = load_project(root)
    assert "nightly" not in project.pipelines
    messages = sorted(e.message for e in project.errors)
    call = f"{root / 'flows.py'}:{_line(root, 'save(load([1, 2]))')}"
    assert messages == [
        f"{call}: pipeline 'nightly': task 'load' called wrongly: missing argument 'shop_db' "
        "(and no resource is named 'shop_db')",
        f"{call}: pipeline 'nightly': task 'save': parameter 'store' asks for resource "
        "'warehouse', which is not declared (resources: none; add a [resources.NAME] table)",
    ]


def test_an_unknown_kind_is_a_load_error(tmp_path: Path) -> None:
    extra = '[resources.shop_db]\nkind = "no_such_kind"\n' + TALLY.format("warehouse")
    root = _project(tmp_path / "p", extra)
    project = load_project(root)
    assert "nightly" not in project.pipelines
    (declared, used) = project.errors
    assert declared.module == "legato.toml"
    assert declared.message.startswith(f"{root / 'legato.toml'}: [resources.shop_db]: ")
    assert "no resource kind 'no_such_kind' (known: " in declared.message
    assert "task 'load': resource 'shop_db' is declared wrongly" in used.message


def test_a_resource_with_a_pool_gives_its_tasks_a_slot_of_it(tmp_path: Path) -> None:
    extra = (
        '[pools]\nwrites = 1\n[resources.shop_db]\nkind = "tally:Tally"\n'
        '[resources.warehouse]\nkind = "tally:Tally"\npool = "writes"\n'
    )
    project = load_project(_project(tmp_path / "p", extra))
    assert project.errors == []
    nodes = project.pipelines["nightly"].graph.nodes
    assert (nodes["load"].task.pool, nodes["save"].task.pool) == (None, "writes")
    snapshot = {n["id"]: n["pool"] for n in project.pipelines["nightly"].snapshot()["nodes"]}
    assert snapshot == {"load": None, "save": "writes"}


def test_a_resource_pool_that_does_not_exist_is_a_load_error(tmp_path: Path) -> None:
    extra = (
        '[resources.shop_db]\nkind = "tally:Tally"\n'
        '[resources.warehouse]\nkind = "tally:Tally"\npool = "writes"\n'
    )
    project = load_project(_project(tmp_path / "p", extra))
    assert "nightly" not in project.pipelines
    assert "task 'save': pool 'writes' does not exist" in project.errors[0].message


def test_too_many_arguments_is_still_wrong_at_definition() -> None:
    @task
    def one(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match="called wrongly: too many positional"):

        @pipeline
        def p():
            one(1, 2)


def test_an_annotated_resource_cannot_also_be_passed() -> None:
    @task
    def one(x: int, db: Annotated[object, legato.resource("db")]) -> int:
        return x

    with pytest.raises(DefinitionError, match="called wrongly: got an unexpected keyword"):

        @pipeline
        def p():
            one(1, db=2)


def test_resources_of_different_pools_for_one_task_is_a_load_error(tmp_path: Path) -> None:
    extra = (
        '[pools]\nreads = 2\nwrites = 1\n'
        '[resources.shop_db]\nkind = "tally:Tally"\npool = "reads"\n'
        '[resources.warehouse]\nkind = "tally:Tally"\npool = "writes"\n'
    )
    code = FLOWS.replace("def save(n: int,", "def save(n: int, shop_db,")
    root = _project(tmp_path / "p", extra)
    (root / "flows.py").write_text(code, encoding="utf-8")
    project = load_project(root)
    assert "nightly" not in project.pipelines
    (error,) = project.errors
    assert error.message.endswith(
        "pipeline 'nightly': task 'save': its resources take different pools ('shop_db' takes "
        "pool 'reads', 'warehouse' takes pool 'writes'); a task takes one pool"
    )
