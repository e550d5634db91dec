"""docs/lineage.md: its settings examples are what legato.toml accepts, and say what they
mean."""

from __future__ import annotations

import re
from pathlib import Path

from legato.config import load_config

DOCS = Path(__file__).parents[1] / "docs"


def test_each_lineage_example_is_a_valid_table(tmp_path: Path) -> None:
    text = (DOCS / "lineage.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL):
        root = tmp_path / f"p{len(found)}"
        root.mkdir()
        (root / "legato.toml").write_text(
            f'[project]\nname = "shop"\nmodules = ["flows"]\n\n{block}', encoding="utf-8"
        )
        found.append(load_config(root).lineage)
    file, marquez = found
    assert file is not None and file.transport == "file" and file.namespace == "shop"
    assert file.path == (tmp_path / "p0" / ".legato" / "lineage.jsonl").resolve()
    assert marquez is not None and marquez.namespace == "retail"
    assert marquez.url == "http://localhost:5000" and marquez.endpoint == "api/v1/lineage"
    assert marquez.api_key == "${secret:marquez_api_key}"  # resolved when sending only
    assert marquez.headers == {"X-Team": "data-platform"} and marquez.timeout == 5


def test_the_guides_lineage_example_is_a_valid_table(tmp_path: Path) -> None:
    text = (DOCS / "guide.md").read_text(encoding="utf-8")
    section = text[text.index("## Lineage") :]
    section = section[: section.index("\n## ", 1)]
    (block,) = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    (tmp_path / "legato.toml").write_text(
        f'[project]\nname = "shop"\nmodules = ["flows"]\n\n{block}', encoding="utf-8"
    )
    found = load_config(tmp_path).lineage
    assert found is not None and found.transport == "http"
    assert found.endpoint == "api/v1/lineage" and found.namespace == "shop"
