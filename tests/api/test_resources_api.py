"""``/api/v1/resources``, ``/api/v1/resources/check`` and ``/api/v1/config``: a viewer lists
the resources with their secrets masked, an operator checks them (a SQLite database that
answers, a PostgreSQL database named by a secret that does not exist, the secret masked in
the reason) and reads the settings in effect; a viewer may do neither."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client

#: A resource name and setting a page must show as text, never run.
SCRIPT = "<script>alert('res')</script>"
#: The secret naming the PostgreSQL database that does not exist.
HUSH = "hush-db-4471"
#: A token written in plain under a secret-sounding key: never shown.
PLAIN_TOKEN = "plain-token-9082"

FLOWS = """
from legato import pipeline, task

@task
def load(shop) -> None:
    pass

@task
def report(ctx, loaded: None) -> None:
    pass

@pipeline
def nightly():
    report(load())
"""


def resource_project(tmp_path: Path, pg_url: str) -> Path:
    """A project with a SQLite ``sql`` resource under ``tmp_path`` that the task ``load``
    asks for, a PostgreSQL one whose database (a secret) does not exist, and one whose name
    and settings carry markup."""
    server = pg_url.split("?", 1)[0].rsplit("/", 1)[0]
    (tmp_path / "data").mkdir()
    toml = f"""
[pools]
db = 2

[resources.shop]
kind = "sql"
url = "sqlite:///{tmp_path / 'data' / 'shop.db'}"
pool = "db"

[resources.ghost]
kind = "sql"
url = "{server}/${{secret:ghost_db}}"

[resources."{SCRIPT}"]
kind = "files"
url = "memory://{SCRIPT}"
options = {{ token = "{PLAIN_TOKEN}" }}
"""
    return make_project(tmp_path / "p", FLOWS, extra=toml)


@contextmanager
def resource_workspace(tmp_path: Path, pg_url: str) -> Iterator[Workspace]:
    """The workspace of ``resource_project``, with the secret naming the missing database."""
    with Workspace(resource_project(tmp_path, pg_url)) as w:
        door(w).secrets.set("ghost_db", HUSH)
        yield w


@pytest.fixture
def ws(tmp_path: Path, pg_url: str) -> Iterator[Workspace]:
    with resource_workspace(tmp_path, pg_url) as w:
        yield w


def test_a_viewer_lists_resources_with_their_secrets_masked(ws: Workspace, tmp_path: Path) -> None:
    client = signed_client(ws, "viewer", web=False)
    r = client.get("/api/v1/resources")
    assert r.status_code == 200, r.text
    by_name = {x["name"]: x for x in r.json()}
    assert sorted(by_name) == sorted([SCRIPT, "ghost", "shop"])
    assert by_name["shop"] == {
        "name": "shop",
        "kind": "sql",
        "settings": {"url": f"sqlite:///{tmp_path / 'data' / 'shop.db'}"},
        "pool": "db",
        "tasks": ["nightly.load"],
    }
    assert by_name["ghost"]["settings"]["url"].endswith("/${secret:ghost_db}")
    assert by_name[SCRIPT]["settings"]["options"] == {"token": "****"}
    assert PLAIN_TOKEN not in r.text and HUSH not in r.text


def test_a_viewer_may_not_check_resources_nor_read_the_settings(ws: Workspace) -> None:
    client = signed_client(ws, "viewer", web=False)
    refused = client.post("/api/v1/resources/check", json={"names": ["shop"]})
    assert refused.status_code == 403, refused.text
    assert "resources.check" in refused.json()["error"]
    assert client.get("/api/v1/config").status_code == 403
    # Nothing was opened, so no secret was read.
    assert door(ws).audit.entries(action="secrets.read") == []


def test_an_operator_checks_every_resource_or_those_named(ws: Workspace) -> None:
    client = signed_client(ws, "operator", web=False)
    r = client.post("/api/v1/resources/check")
    assert r.status_code == 200, r.text
    by_name = {x["name"]: x for x in r.json()}
    shop, ghost = by_name["shop"], by_name["ghost"]
    assert shop["ok"] is True and shop["kind"] == "sql"
    assert shop["detail"].startswith("SELECT 1 answered by SQLite ")
    assert ghost["ok"] is False
    # The reason in one line, the secret in it masked.
    assert 'database "****" does not exist' in ghost["detail"], ghost["detail"]
    assert HUSH not in r.text and "\n" not in ghost["detail"]
    assert all(x["seconds"] >= 0 for x in r.json())
    # The secret was read for the check, by the operator's token.
    [read] = door(ws).audit.entries(action="secrets.read")
    assert read.target == "ghost_db" and read.actor.startswith("http:token:")

    only = client.post("/api/v1/resources/check", json={"names": ["shop"]})
    assert only.status_code == 200 and [x["name"] for x in only.json()] == ["shop"]
    unknown = client.post("/api/v1/resources/check", json={"names": ["nope"]})
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": f"no resource named 'nope' (resources: {SCRIPT}, ghost, shop)",
        "field": "name",
    }
    typo = client.post("/api/v1/resources/check", json={"name": ["shop"]})
    assert typo.status_code == 422  # a field the body does not know is an error, not a no-op


def test_an_operator_reads_the_settings_in_effect_with_secrets_masked(ws: Workspace) -> None:
    client = signed_client(ws, "operator", web=False)
    r = client.get("/api/v1/config")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["environment"] == "default" and body["environments"] == ["default"]
    assert body["file"].endswith("legato.toml")
    resources = body["settings"]["resources"]
    assert resources["ghost"]["url"].endswith("/${secret:ghost_db}")
    assert resources[SCRIPT]["options"] == {"token": "****"}
    assert PLAIN_TOKEN not in r.text and HUSH not in r.text
