"""Environments through the real command: `legato --env NAME` and LEGATO_ENV choose the
settings, every run says where it was made, a store of another environment is refused in one
line, and `legato config` prints the settings in effect with every secret masked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import DaemonProcess, cli, make_project

#: The task runs in a worker process and writes down the environment that process sees.
CODE = """
import os
from pathlib import Path

from legato import pipeline, task

@task
def work() -> str:
    env = os.environ.get("LEGATO_ENV", "-")
    with open(Path(__file__).parent / "seen.txt", "a") as fh:
        fh.write(env + "\\n")
    return env

@pipeline
def etl():
    work()
"""

ENVS = """
[env.dev.store]
url = "sqlite:///.legato/dev.db"

[env.shared.executor]
workers = 1
"""


def _project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "shop", CODE, extra=ENVS)


def test_env_flag_and_variable_choose_the_environment_runs_show(tmp_path: Path) -> None:
    root = _project(tmp_path)
    done = cli("--env", "dev", "run", "etl", "-q", project=root)
    assert done.returncode == 0, done.stderr
    assert (root / ".legato" / "dev.db").is_file()
    assert (root / "seen.txt").read_text().split() == ["dev"]  # the worker saw it too
    assert cli("run", "etl", "-q", project=root).returncode == 0
    listed = cli("runs", project=root, env={"LEGATO_ENV": "dev"})
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["run", "pipeline", "state", "env"]
    assert row.split()[1:4] == ["etl", "succeeded", "dev"]
    assert len(listed.stdout.splitlines()) == 2  # dev's store holds dev's run alone
    [made] = json.loads(cli("--env", "dev", "runs", "--json", project=root).stdout)
    assert made["environment"] == "dev"
    [default] = json.loads(cli("runs", "--json", project=root).stdout)
    assert default["environment"] == "default"
    shown = cli("--env", "dev", "show", made["id"], project=root)
    assert "environment: dev" in shown.stdout


def test_unknown_environment_and_a_store_of_another_are_one_line_errors(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    unknown = cli("--env", "prdo", "runs", project=root)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1
    assert "no environment 'prdo'" in unknown.stderr
    assert "known: default, dev, shared" in unknown.stderr
    assert cli("run", "etl", "-q", project=root).returncode == 0
    # `shared` gave itself no [store] url: the store is default's, and it stays so.
    refused = cli("--env", "shared", "run", "etl", project=root)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "belongs to environment 'default', not 'shared'" in refused.stderr
    assert "give [env.shared] its own [store] url" in refused.stderr
    assert (root / "seen.txt").read_text().split() == ["-"]  # the refused run never ran


def test_a_daemon_started_with_env_drives_that_environments_runs(tmp_path: Path) -> None:
    root = _project(tmp_path)
    queued = cli("--env", "dev", "submit", "etl", "--json", project=root)
    assert queued.returncode == 0, queued.stderr
    run_id = json.loads(queued.stdout)["id"]
    daemon = DaemonProcess(
        ["--env", "dev", "scheduler", "--project", str(root)], tmp_path / "daemon.log"
    )
    try:
        daemon.wait_output("environment dev")
        daemon.wait_output(f"run {run_id} of etl succeeded", timeout=30)
    finally:
        daemon.stop()
    shown = json.loads(cli("--env", "dev", "show", run_id, "--json", project=root).stdout)
    assert (shown["run"]["state"], shown["run"]["environment"]) == ("succeeded", "dev")
    assert (root / "seen.txt").read_text().split() == ["dev"]


SECRETS = """
[store]
url = "sqlite:///.legato/legato.db"

[env.prod.store]
url = "postgresql://legato:store-pw-1@db.internal:5432/legato?sslmode=require"

[env.prod.executor]
address = "tcp://dask:8786"

[resources.shop]
kind = "sql"
url = "postgresql://app:${secret:shop_password}@db.internal/shop"

[resources.api]
kind = "http"
base_url = "https://${env:API_HOST}/v1"
auth = { token = "${env:API_TOKEN}" }
headers = { Authorization = "Bearer literal-token-2", Accept = "application/json" }

[resources.broker]
kind = "amqp"
url = "amqp://guest:broker-pw-3@127.0.0.1:5672/"

[channels.ops]
kind = "webhook"
url = { env = "OPS_HOOK" }
secret = { secret = "ops_signing" }

[auth.oidc]
issuer = "https://id.example.com"
client_id = "legato"
client_secret = "oidc-secret-4"
"""


def test_config_prints_the_settings_in_effect_with_every_secret_masked(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop", CODE, extra=SECRETS)
    env = {"API_HOST": "api.example.com", "API_TOKEN": "env-token-5"}
    text = cli("--env", "prod", "config", project=root, env=env)
    assert text.returncode == 0, text.stderr
    as_json = cli("config", "--env", "prod", "--json", project=root, env=env)
    assert as_json.returncode == 0, as_json.stderr
    for out in (text.stdout, as_json.stdout):
        for secret in ("store-pw-1", "literal-token-2", "broker-pw-3", "oidc-secret-4",
                       "env-token-5"):  # fmt: skip
            assert secret not in out
    assert "# environment 'prod' (defined: default, prod): [env.prod] laid over" in text.stdout
    shown = json.loads(as_json.stdout)
    assert (shown["environment"], shown["environments"]) == ("prod", ["default", "prod"])
    settings = shown["settings"]
    assert settings["store"]["url"] == (
        "postgresql://legato:****@db.internal:5432/legato?sslmode=require"
    )
    assert settings["executor"]["address"] == "tcp://dask:8786"
    resources = settings["resources"]
    # A secret's reference is a name: shown as written.
    assert resources["shop"]["url"] == "postgresql://app:${secret:shop_password}@db.internal/shop"
    # An environment variable is shown resolved, masked where its key names a secret.
    assert resources["api"]["base_url"] == "https://api.example.com/v1"
    assert resources["api"]["auth"] == {"token": "****"}
    assert resources["api"]["headers"] == {"Authorization": "****", "Accept": "application/json"}
    assert resources["broker"]["url"] == "amqp://guest:****@127.0.0.1:5672/"
    assert settings["channels"]["ops"] == {
        "kind": "webhook",
        "url": {"env": "OPS_HOOK"},
        "secret": {"secret": "ops_signing"},
    }
    assert settings["auth"]["oidc"]["client_secret"] == "****"
    assert settings["auth"]["oidc"]["client_id"] == "legato"
    # The text is TOML that reads back to the same settings (less what is unset).
    import tomllib

    body = tomllib.loads(text.stdout)
    assert body["resources"] == resources
    assert body["store"] == settings["store"]
    # Without --env: the settings outside [env].
    plain = json.loads(cli("config", "--json", project=root).stdout)
    assert plain["environment"] == "default"
    assert plain["settings"]["store"]["url"].endswith("/shop/.legato/legato.db")
