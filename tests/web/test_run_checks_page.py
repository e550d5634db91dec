"""The run page lists each task's data-quality checks under the task, with their outcome,
the failing rows' count and, for a failed one, the failing rows."""

from __future__ import annotations

import re
from pathlib import Path

from legato.services.workspace import Workspace
from tests.engine.test_run_checks import CODE
from tests.helpers import door, make_project, signed_client


def test_the_run_page_lists_checks_under_their_task(tmp_path: Path) -> None:
    with Workspace(make_project(tmp_path / "proj", CODE)) as ws:
        run = door(ws).runs.run_pipeline("shop", {"bad": True})
        page = signed_client(ws, "viewer").get(f"/runs/{run.id}")
        assert page.status_code == 200, page.text
        rows = re.findall(r'<tr (?:class="([^"]*)" )?data-(task|check)="([^"]*)"', page.text)
        shown = [(kind, name, cls) for cls, kind, name in rows]
        names = [(kind, name) for kind, name, _ in shown]
        assert names == [
            ("task", "orders"),
            ("check", "unique(order_id)"),
            ("check", "accepted_values(status)"),
            ("check", "row_count"),
            ("check", "relationship(order_id -&gt; shop.refunds.order_id)"),
            ("task", "report"),
        ]
        assert shown[1][2] == "check-row check-failed check-block"
        assert shown[3][2] == "check-row check-passed check-block"
        unique = page.text[page.text.index('data-check="unique(order_id)"'):]
        unique = unique[:unique.index("</tr>")]
        assert "✗" in unique and "2 of 4" in unique
        assert '<pre>{"order_id": 2, "status": "paid"}' in unique


def test_the_pipeline_graph_draws_each_check_as_a_step_after_its_task(tmp_path: Path) -> None:
    with Workspace(make_project(tmp_path / "proj", CODE)) as ws:
        page = signed_client(ws, "viewer").get("/pipelines/shop")
        assert page.status_code == 200, page.text
        svg = page.text[page.text.index("<svg"):page.text.index("</svg>")]
        steps = re.findall(r'data-check="([^"]*)"', svg)
        assert steps == [
            "orders:unique(order_id)",
            "orders:accepted_values(status)",
            "orders:row_count",
            "orders:relationship(order_id -&gt; shop.refunds.order_id)",
        ]
