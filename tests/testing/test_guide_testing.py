"""docs/guide.md's "Testing pipelines": its project and its tests, written out as the section
shows them, pass when run with the section's command."""

from __future__ import annotations

import re
from pathlib import Path

from tests.testing.subprocess_pytest import run_pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_sections_project_and_tests_pass(tmp_path: Path) -> None:
    blocks = FENCE.findall(section("Testing pipelines"))
    project = tmp_path / "stock"
    files = 0
    for lang, body in blocks:
        if lang in ("python", "toml"):
            first, _, rest = body.partition("\n")
            assert first.startswith("# "), f"a {lang} block that names no file: {first!r}"
            path = project / first[2:].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rest if lang == "python" else body, encoding="utf-8")
            files += 1
    assert files == 3
    commands = [body.strip() for lang, body in blocks if lang == "console"]
    assert commands == ["$ python -m pytest tests"]

    out = run_pytest(["tests"], cwd=project)
    assert "5 passed in " in out and "failed" not in out, out
    assert not (project / ".legato").exists()  # the runs used stores under tmp_path
