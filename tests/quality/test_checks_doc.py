"""docs/checks.md: every Python example runs (its asserts hold) and the output it shows is
what Legato prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from legato.definitions.check_spec import Check
from legato.definitions.task import Task

DOC = Path(__file__).parents[2] / "docs" / "checks.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def run(block: str) -> tuple[dict[str, Any], str]:
    scope: dict[str, Any] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(DOC), "exec"), scope)
    return scope, out.getvalue()


def test_every_python_example_runs() -> None:
    examples = blocks("python")
    assert len(examples) == 7
    for block in examples:
        run(block)


def test_the_declared_task_holds_its_checks() -> None:
    scope, _ = run(blocks("python")[0])
    orders = scope["orders"]
    assert isinstance(orders, Task)
    assert all(isinstance(c, Check) for c in orders.checks) and len(orders.checks) == 6
    assert [c.severity for c in orders.checks].count("warn") == 1


def test_the_printed_outcome_is_what_the_doc_shows() -> None:
    _, printed = run(blocks("python")[1])
    shown = blocks("text")[0]
    assert printed == shown


def test_the_table_lists_every_constructor() -> None:
    from legato import checks

    listed = set(re.findall(r"^\| `(\w+)\(", DOC.read_text(encoding="utf-8"), re.MULTILINE))
    assert listed == {name for name in checks.__all__ if name.islower()}
