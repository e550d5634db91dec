"""A run's checks are steps of its graph: the API lists them as nodes of kind "check" after
their task with their state, the run page's graph draws each as a small node coloured by it,
and ``legato show`` lists them under their task in the same states."""

from __future__ import annotations

import re
from pathlib import Path

from legato.services.workspace import Workspace
from tests.engine.test_run_checks import CODE
from tests.helpers import cli, door, make_project, signed_client

RELATED = "relationship(order_id -> shop.refunds.order_id)"


def test_checks_are_steps_after_their_task_in_the_api_the_graph_and_show(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE)
    with Workspace(root) as ws:
        bad = door(ws).runs.run_pipeline("shop", {"bad": True})
        waiting = door(ws).runs.create_run("shop", {"bad": False})
        with signed_client(ws, "viewer", web=False) as client:
            nodes = client.get(f"/api/v1/runs/{bad.id}").json()["nodes"]
            assert [(n["kind"], n["id"], n["state"]) for n in nodes] == [
                ("task", "orders", "failed"),
                ("check", "orders:unique(order_id)", "failed"),
                ("check", "orders:accepted_values(status)", "warned"),
                ("check", "orders:row_count", "passed"),
                ("check", f"orders:{RELATED}", "error"),
                ("task", "report", "upstream_failed"),
            ]
            unique = nodes[1]
            assert unique["upstream"] == ["orders"] and unique["check"] == "unique(order_id)"
            assert (unique["severity"], unique["failed_count"], unique["total_count"]) == (
                "block", 2, 4)
            queued = client.get(f"/api/v1/runs/{waiting.id}").json()["nodes"]
            assert [n["state"] for n in queued if n["kind"] == "check"] == ["not_run"] * 4

        page = signed_client(ws, "viewer").get(f"/runs/{bad.id}").text
        svg = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" class="dag"'):]
        svg = svg[: svg.index("</svg>")]
        drawn = re.findall(
            r'<g class="node state-(\w+)( check)?" data-(?:task|check)="([^"]*)"', svg
        )
        assert sorted((name, state, bool(check)) for state, check, name in drawn) == sorted([
            ("orders", "failed", False), ("report", "upstream_failed", False),
            ("orders:unique(order_id)", "failed", True),
            ("orders:accepted_values(status)", "warned", True),
            ("orders:row_count", "passed", True),
            (f"orders:{RELATED.replace('>', '&gt;')}", "error", True),
        ])
        assert 'data-source="orders" data-target="orders:row_count"' in svg  # task -> check

    shown = cli("show", waiting.id, project=root)
    assert shown.returncode == 0, shown.stderr
    lines = [line.strip() for line in shown.stdout.splitlines()]
    assert any(line.startswith("· row_count") and "not run (block)" in line for line in lines)
    done = cli("show", bad.id, project=root).stdout
    assert "warned (warn)" in done and "failed (block)" in done and "error (warn)" in done
