"""docs/monitoring.md's Alerts section: every legato.toml example in it is a valid set of
channels and rules, and its Python example declares its rules."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from legato.observability.alert_rules import CONDITIONS, parse_rules
from legato.observability.channels import SecretRef, parse_channels

DOC = Path(__file__).parents[2] / "docs" / "monitoring.md"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Alerts")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.DOTALL)


def reveal(ref: SecretRef) -> str:
    return "value"


def test_every_toml_example_parses_into_rules_with_known_channels() -> None:
    seen: set[str] = set()
    examples = blocks("toml")
    assert len(examples) >= 9
    for block in examples:
        data = tomllib.loads(block)
        channels = parse_channels(data.get("channels", {}), reveal)
        rules = parse_rules(data["alerts"], channels)
        seen |= {rule.condition for rule in rules.values()}
    assert seen == set(CONDITIONS)  # every condition has an example


def test_the_python_example_declares_its_rules_on_the_pipeline() -> None:
    (block,) = blocks("python")
    scope: dict[str, object] = {}
    exec(compile(block, str(DOC), "exec"), scope)
    pipe = scope["nightly_sales"]
    names = [rule.name for rule in pipe.alerts]  # type: ignore[attr-defined]
    assert names == ["nightly_sales:run_failed", "nightly_sales:by_six"]
