"""An unexpected server error tells the client nothing of the code: a generic 500."""

from __future__ import annotations

import logging
import sqlite3
import warnings
from pathlib import Path

import pytest

from legato.server.app import create_app
from legato.server.failures import GENERIC
from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, bearer, door, make_project

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient


def test_a_server_error_is_a_generic_500(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_project(tmp_path / "proj", ONE_TASK)
    with Workspace(root) as ws:
        run = door(ws).runs.run_pipeline("etl")
        # A row damaged behind the server's back (a bad restore, a hand edit): reading it fails.
        with sqlite3.connect(root / ".legato" / "legato.db") as db:
            db.execute("UPDATE runs SET params = '{not json' WHERE id = ?", (run.id,))
        app = create_app(door(ws), allowed_hosts=["testserver"])
        client = TestClient(app, raise_server_exceptions=False, headers=bearer(ws))
        with caplog.at_level(logging.ERROR, logger="legato.server"):
            api = client.get(f"/api/v1/runs/{run.id}")
            page = client.get(f"/runs/{run.id}")
    assert api.status_code == 500
    assert api.json() == {"error": GENERIC, "field": None}
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    for r in (api, page):
        assert "Traceback" not in r.text and "JSONDecodeError" not in r.text
        assert str(root) not in r.text and ".py" not in r.text
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    # The operator still learns what happened, from the server's log.
    assert any(r.exc_info and f"/runs/{run.id}" in r.getMessage() for r in caplog.records)
