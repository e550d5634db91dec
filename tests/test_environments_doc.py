"""docs/environments.md: its legato.toml is a valid project in each of its environments, and
its commands, their output and the error it quotes are what Legato prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from legato.config import load_config
from legato.observability.alert_rules import parse_rules
from legato.observability.channels import SecretRef, parse_channels
from tests.helpers import cli

DOC = Path(__file__).parents[1] / "docs" / "environments.md"

PIPELINES = """
from legato import pipeline, task

@task(in_process=True)
def total() -> int:
    return 42

@pipeline
def daily_sales():
    total()
"""


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    [toml] = blocks("toml")
    (root / "legato.toml").write_text(toml, encoding="utf-8")
    (root / "pipelines.py").write_text(PIPELINES, encoding="utf-8")
    return root


def reveal(ref: SecretRef) -> str:
    return "value"


def test_the_example_is_valid_in_each_environment(project: Path) -> None:
    for env in ("default", "dev", "prod"):
        config = load_config(project, env)
        channels = parse_channels(config.channel_tables, reveal)
        assert set(parse_rules(config.alert_tables, channels)) == {"failures"}
    dev, prod = load_config(project, "dev"), load_config(project, "prod")
    assert dev.database_url == f"sqlite:///{project / '.legato' / 'dev.db'}"
    assert (dev.workers, prod.workers, prod.lease_seconds) == (1, 4, 15.0)
    assert prod.resource_tables["shop_db"]["kind"] == "sql"
    assert prod.resource_tables["rates"] == {
        "kind": "http",
        "base_url": "https://rates.example.com",
        "auth": {"token": "${env:RATES_TOKEN}"},
    }
    assert prod.channel_tables["ops"]["kind"] == "webhook"


def test_the_commands_run_and_print_what_the_doc_shows(project: Path) -> None:
    [commands] = blocks("sh")
    env = {"RATES_TOKEN": "rates-token-value"}
    outputs = []
    for line in commands.strip().splitlines():
        words = shlex.split(line.split("#", 1)[0])
        assigned: dict[str, str] = {}
        while re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value before the command
            name, _, value = words.pop(0).partition("=")
            assigned[name] = value
        assert words[0] == "legato", line
        done = cli(*words[1:], project=project, env={**env, **assigned})
        assert done.returncode == 0, f"{line}: {done.stderr}"
        outputs.append(done.stdout)
    assert "daily_sales" in outputs[1] and "dev" in outputs[1]
    shown = outputs[2]
    assert "rates-token-value" not in shown
    config_output = blocks("text")[1]
    for expected in config_output.strip().splitlines():
        assert expected in shown.splitlines(), expected


def test_the_quoted_refusal_is_the_one_printed(project: Path) -> None:
    with (project / "legato.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n[env.staging.executor]\nworkers = 1\n")
    assert cli("run", "daily_sales", "-q", project=project).returncode == 0
    refused = cli("--env", "staging", "run", "daily_sales", project=project)
    assert refused.returncode == 2
    quoted = blocks("text")[0].strip()
    assert refused.stderr.strip().replace(str(project.resolve()), "/srv/shop") == quoted
