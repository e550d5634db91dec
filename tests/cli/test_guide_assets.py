"""docs/guide.md's "Assets": its project, written out as the section shows it, runs with the
section's commands, and ``legato assets`` prints the table the section shows."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import cli

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)
WHEN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _shape(text: str) -> list[list[str]]:
    """Lines as their words, each time written as "TIME" (they differ from run to run)."""
    return [WHEN.sub("TIME", line).split() for line in text.strip().splitlines()]


def write_project(folder: Path) -> list[tuple[str, str]]:
    """The section's project written out in ``folder`` (each file as its block names it);
    the section's code blocks, as (language, text)."""
    blocks: list[tuple[str, str]] = FENCE.findall(_section("Assets"))
    folder.mkdir()
    for lang, body in blocks:
        if lang in ("python", "toml"):
            first, _, rest = body.partition("\n")
            assert first.startswith("# "), f"a {lang} block that names no file: {first!r}"
            (folder / first[2:].strip()).write_text(
                rest if lang == "python" else body, encoding="utf-8"
            )
    return blocks


def test_the_sections_project_commands_and_catalog(tmp_path: Path) -> None:
    project = tmp_path / "sales"
    blocks = write_project(project)
    (commands,) = [body for lang, body in blocks if lang == "console"]
    (catalog,) = [body for lang, body in blocks if lang == "text"]
    printed = {}
    for line in commands.strip().splitlines():
        assert line.startswith("$ legato "), line
        r = cli(*line.removeprefix("$ legato ").split(), project=project)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
        printed[line] = r.stdout
    assert _shape(printed["$ legato assets"]) == _shape(catalog)
    shown = printed["$ legato assets show warehouse.daily_sales"]
    assert "warehouse.daily_sales  sales per day" in shown
    assert "upstream     shop.orders" in shown and "downstream   reports.weekly" in shown
    assert "triggers     refresh_dashboard" in shown  # the section's on_asset pipeline
    assert "added by the task: source='shop export', late_orders=0" in shown
