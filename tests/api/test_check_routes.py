"""``GET /api/v1/checks``: check results with their history, read by a viewer."""

from __future__ import annotations

from pathlib import Path

from legato.services.workspace import Workspace
from tests.engine.test_run_checks import CODE
from tests.helpers import door, make_project, signed_client


def test_a_viewer_reads_check_results_per_run_and_asset(tmp_path: Path) -> None:
    with Workspace(make_project(tmp_path / "proj", CODE)) as ws:
        good = door(ws).runs.run_pipeline("shop", {"bad": False})
        bad = door(ws).runs.run_pipeline("shop", {"bad": True})
        with signed_client(ws, "viewer", web=False) as client:
            r = client.get("/api/v1/checks", params={"run": bad.id})
            assert r.status_code == 200, r.text
            got = {c["check"]: c for c in r.json()}
            unique = got["unique(order_id)"]
            assert (unique["outcome"], unique["severity"], unique["failed_count"]) == (
                "failed", "block", 2)
            assert unique["sample"][0] == {"order_id": 2, "status": "paid"}
            assert unique["asset"] == "shop.orders" and unique["task"] == "orders"

            history = client.get("/api/v1/checks", params={"asset": "shop.orders"}).json()
            assert [c["run_id"] for c in history if c["check"] == "unique(order_id)"] == [
                bad.id, good.id]
            assert len(client.get("/api/v1/checks", params={"limit": 2}).json()) == 2
            assert client.get("/api/v1/checks", params={"run": "nope"}).status_code == 404
