"""Every page names the environment the server runs in, a production one in its own colour;
the run page and the runs lists say which environment each run was made in, and the runs
list filters by it."""

from __future__ import annotations

import re
from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, door, make_project, signed_client

ENVS = """
[env.staging.store]
url = "sqlite:///.legato/staging.db"

[env.prod.store]
url = "sqlite:///.legato/prod.db"
"""


def test_the_run_page_shows_the_environment(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, extra=ENVS)
    with Workspace(root, env="staging") as ws:
        run = door(ws).runs.run_pipeline("etl")
        page = signed_client(ws, "viewer").get(f"/runs/{run.id}")
        assert page.status_code == 200, page.text
        assert '<span class="muted">environment</span> staging' in page.text


def test_the_runs_lists_show_and_filter_by_environment(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, extra=ENVS)
    with Workspace(root, env="staging") as ws:
        run = door(ws).runs.run_pipeline("etl")
        client = signed_client(ws, "viewer")
        listed = client.get("/runs")
        assert listed.status_code == 200, listed.text
        assert "<th>Env</th>" in listed.text
        assert '<td><span class="env">staging</span></td>' in listed.text
        # The filter offers every environment legato.toml defines, in the file's order.
        select = re.search(r'<select name="environment">(.*?)</select>', listed.text, re.S)
        assert select and re.findall(r"<option[^>]*>(\w*)</option>", select.group(1)) == [
            "all", "default", "staging", "prod",
        ]
        kept = client.get("/runs", params={"environment": "staging"})
        assert run.id in kept.text and "<option selected>staging</option>" in kept.text
        other = client.get("/runs", params={"environment": "default"})
        assert run.id not in other.text and "No runs match." in other.text
        pipeline = client.get("/pipelines/etl")
        assert '<td><span class="env">staging</span></td>' in pipeline.text


def test_every_page_names_the_environment_and_prod_stands_out(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, extra=ENVS)
    with Workspace(root, env="staging") as ws:
        client = signed_client(ws, "viewer")
        for path in ("/", "/runs", "/resources", "/no/such/page"):
            page = client.get(path)
            named = re.findall(r'class="env-name"[^>]*>environment <strong>staging<', page.text)
            assert len(named) == 2, (path, page.text[:2000])  # the header's and the footer's
            assert "env-prod" not in page.text and "top-prod" not in page.text
            assert "(staging)</title>" in page.text
        signin = client.get("/signin")
        assert "environment <strong>staging</strong>" in signin.text
    with Workspace(root, env="prod") as ws:
        run = door(ws).runs.run_pipeline("etl")
        page = signed_client(ws, "viewer").get("/runs")
        assert '<header class="top top-prod">' in page.text
        assert page.text.count('<span class="env-name env-prod"') == 2
        assert '<span class="env env-prod">prod</span>' in page.text and run.id in page.text
