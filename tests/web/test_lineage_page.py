"""The lineage page (``/lineage``) over a catalog larger than one drawing: capped with a
note saying so, ``?focus=&depth=`` drawing one asset's neighbourhood, each box linking to its
asset; an unknown focus is the error page, not a drawing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from legato.services.workspace import Workspace
from legato.web import lineage_page
from tests.helpers import make_project, signed_client
from tests.web.test_assets_pages import CODE


def boxes(html: str) -> list[str]:
    return re.findall(r'<g class="node [^"]*" data-task="([^"]*)">', html)


def test_a_large_graph_is_capped_and_a_focus_draws_a_neighbourhood(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage_page, "GRAPH_CAP", 40)
    with Workspace(make_project(tmp_path / "proj", CODE)) as ws:
        client = signed_client(ws, "viewer")
        whole = client.get("/lineage")
        assert whole.status_code == 200, whole.text
        assert '<a href="/lineage" class="on">Lineage</a>' in whole.text
        assert len(boxes(whole.text)) == 40
        assert "Showing the first 40 of 108 assets (by key)." in whole.text

        around = client.get("/lineage", params={"focus": "shop.orders", "depth": 1})
        assert sorted(boxes(around.text)) == ["crm.customers", "reports.orders", "shop.orders"]
        assert 'href="/assets/reports.orders"' in around.text
        assert "3 assets within 1 edge of" in around.text
        assert len(re.findall(r'<path class="edge"', around.text)) == 2

        missing = client.get("/lineage", params={"focus": "no.such"})
        assert missing.status_code == 404
        assert "no asset &#39;no.such&#39;" in missing.text
