"""The API's runs say the environment each was made in."""

from __future__ import annotations

from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, door, make_project, signed_client

TOML = '\n[env.dev.store]\nurl = "sqlite:///.legato/dev.db"\n'


def test_a_run_and_the_list_of_runs_carry_the_environment(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, extra=TOML)
    with Workspace(root, env="dev") as ws:
        run = door(ws).runs.run_pipeline("etl")
        client = signed_client(ws, "viewer", web=False)
        one = client.get(f"/api/v1/runs/{run.id}")
        assert one.status_code == 200, one.text
        assert one.json()["run"]["environment"] == "dev"
        [listed] = client.get("/api/v1/runs").json()["runs"]
        assert listed["environment"] == "dev"
        schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["RunOut"]
        assert "environment" in schema["properties"]


def test_the_list_of_runs_filters_by_environment(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", ONE_TASK, extra=TOML)
    with Workspace(root, env="dev") as ws:
        run = door(ws).runs.run_pipeline("etl")
        client = signed_client(ws, "viewer", web=False)
        dev = client.get("/api/v1/runs", params={"environment": "dev"}).json()["runs"]
        assert [r["id"] for r in dev] == [run.id]
        for other in ("default", "prod"):
            assert client.get("/api/v1/runs", params={"environment": other}).json() == {
                "runs": [],
                "next_cursor": None,
            }
