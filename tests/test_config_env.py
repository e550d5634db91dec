"""legato.toml's environments: [env.NAME] laid over the other settings, chosen by name."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from legato.config import ConfigError, load_config
from tests.helpers import make_project

BASE = """
[store]
url = "sqlite:///base.db"

[pools]
db = 2

[alerts.failures]
condition = "run_failed"
channels = ["ops"]

[channels.ops]
kind = "webhook"
url = "https://hooks.example.com/base"

[resources.shop]
kind = "sql"
url = "postgresql://app@db-dev/shop"
pool_size = 5
echo = true

[resources.files]
kind = "files"
url = "file:///tmp/drop"
auto_mkdir = true
"""

ENVS = """
[env.dev]
executor = { workers = 1 }

[env.prod.store]
url = "postgresql://legato@db-prod/legato"

[env.prod.executor]
workers = 8
mode = "thread"

[env.prod.pools]
warehouse = 1

[env.prod.resources.shop]
url = "postgresql://app@db-prod/shop"

[env.prod.resources.files]
kind = "s3like"
url = "s3://drop"

[env.prod.channels.ops]
url = "https://hooks.example.com/prod"
"""


def project(tmp_path: Path, toml: str = BASE + ENVS) -> Path:
    return make_project(tmp_path / "p", "x = 1\n", extra=toml)


def test_an_environment_overlays_tables_key_by_key(tmp_path: Path) -> None:
    config = load_config(project(tmp_path), "prod")
    assert config.environment == "prod"
    assert config.environments == ("default", "dev", "prod")
    assert config.database_url == "postgresql://legato@db-prod/legato"
    # [executor] took prod's keys and kept the rest; lease_seconds came from the file.
    assert (config.workers, config.mode, config.lease_seconds) == (8, "thread", 3.0)
    assert config.pools == {"db": 2, "warehouse": 1}
    # A resource's table is merged key by key: prod changed the URL, kept the pool and echo.
    assert config.resource_tables["shop"] == {
        "kind": "sql",
        "url": "postgresql://app@db-prod/shop",
        "pool_size": 5,
        "echo": True,
    }
    # ... unless prod gives it another kind: then prod's table is the whole of it.
    assert config.resource_tables["files"] == {"kind": "s3like", "url": "s3://drop"}
    assert config.channel_tables["ops"] == {
        "kind": "webhook",
        "url": "https://hooks.example.com/prod",
    }
    assert config.alert_tables == {"failures": {"condition": "run_failed", "channels": ["ops"]}}


def test_no_environment_chosen_reads_the_file_as_it_always_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEGATO_ENV", raising=False)
    with_envs = load_config(project(tmp_path / "a"))
    without = load_config(project(tmp_path / "b", BASE))
    assert with_envs.environment == without.environment == "default"
    mine, theirs = asdict(with_envs), asdict(without)
    for differs in ("root", "environments", "name"):
        mine.pop(differs), theirs.pop(differs)
    assert str(mine).replace("/a/", "/b/") == str(theirs)
    # "default" names those settings, and choosing it is choosing nothing.
    assert load_config(project(tmp_path / "c"), "default").database_url.endswith("/p/base.db")


def test_the_environment_variable_chooses_and_the_argument_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path)
    monkeypatch.setenv("LEGATO_ENV", "dev")
    assert (load_config(root).environment, load_config(root).workers) == ("dev", 1)
    assert load_config(root, "prod").workers == 8
    # Environment variables of single settings still win over the environment's table.
    monkeypatch.setenv("LEGATO_WORKERS", "3")
    monkeypatch.setenv("LEGATO_DATABASE_URL", "sqlite:///other.db")
    config = load_config(root, "prod")
    assert config.workers == 3
    assert config.database_url == f"sqlite:///{root.resolve() / 'other.db'}"


def test_an_unknown_environment_is_refused_with_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(root, "prdo")
    assert "no environment 'prdo'" in str(info.value)
    assert "known: default, dev, prod; did you mean 'prod'?" in str(info.value)
    monkeypatch.setenv("LEGATO_ENV", "staging")
    with pytest.raises(ConfigError, match=r"no environment 'staging'.*LEGATO_ENV"):
        load_config(root)
    # A project without [env] knows only "default".
    with pytest.raises(ConfigError, match=r"known: default$"):
        load_config(project(tmp_path / "plain", BASE))


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[env.prod.stroe]\nurl = 'x'", "unknown section [env.prod.stroe]"),
        ("[env.prod.executor]\nworkerz = 2", "unknown key 'workerz' in [env.prod.executor]"),
        ("[env.prod.env.x]\na = 1", "unknown section [env.prod.env]"),
        ("[env.prod]\nstore = 'x'", "[env.prod.store] must be a table"),
        ("[env]\nprod = 1", "[env.prod] must be a table"),
        ("[env.default.store]\nurl = 'x'", "'default' is the name of the settings outside"),
        ('[env."pr od".store]\nurl = "x"', "an environment's name is letters"),
    ],
)
def test_every_environment_is_checked_whichever_is_chosen(
    tmp_path: Path, toml: str, message: str
) -> None:
    root = project(tmp_path, f"{BASE}\n{toml}\n")
    with pytest.raises(ConfigError) as info:
        load_config(root)  # prod is not chosen: its typo shows all the same
    assert message in str(info.value)


def test_a_wrong_value_from_an_environment_says_so(tmp_path: Path) -> None:
    root = project(tmp_path, f'{BASE}\n[env.prod.executor]\nworkers = "many"\n')
    load_config(root)  # fine without prod
    with pytest.raises(ConfigError) as info:
        load_config(root, "prod")
    assert "[executor] workers must be a int" in str(info.value)
    assert "(with [env.prod] laid over)" in str(info.value)
