"""The run page of a run whose logs and results retention removed says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from legato.clock import ManualClock
from legato.services.retention_service import Policy
from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client
from tests.services.test_retention_files import CODE


def _notes(html: str) -> list[str]:
    return re.findall(r'<p class="meta warn-text run-pruned">([^<]*)</p>', html)


def test_the_run_page_says_its_results_and_logs_were_pruned(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with Workspace(make_project(tmp_path / "proj", CODE), clock=clock) as ws:
        old = door(ws).runs.run_pipeline("chain", {}).id
        clock.advance(3 * 24 * 3600)
        newest = door(ws).runs.run_pipeline("chain", {}).id
        client = signed_client(ws, "viewer")
        assert _notes(client.get(f"/runs/{old}").text) == []
        door(ws).retention.prune(Policy.of(timedelta(days=30), results=timedelta(days=1)))
        page = client.get(f"/runs/{old}")
        assert page.status_code == 200, page.text
        assert _notes(page.text) == [
            "results pruned: removed by retention ([retention] results in legato.toml)"
        ]
        assert _notes(client.get(f"/runs/{newest}").text) == []
