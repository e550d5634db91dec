"""An asset's page lists its checks: the newest outcome of each with its failing count and
message, linked to the run, and the recent results; text from the data is escaped."""

from __future__ import annotations

import re
from pathlib import Path

from legato.services.workspace import Workspace
from tests.helpers import door, make_project, signed_client

SCRIPT = "<script>alert('x')</script>"

CODE = '''
from legato import checks, pipeline, task


@task(produces="shop.orders", checks=[
    checks.unique("order_id"),
    checks.accepted_values("status", ["new", "paid"], severity="warn"),
])
def orders(status: str) -> list[dict]:
    return [{"order_id": 1, "status": "new"}, {"order_id": 2, "status": status}]


@pipeline
def shop(status: str = "paid"):
    orders(status)
'''


def test_the_asset_page_shows_each_checks_newest_outcome(tmp_path: Path) -> None:
    with Workspace(make_project(tmp_path / "proj", CODE)) as ws:
        first = door(ws).runs.run_pipeline("shop", {"status": "paid"})
        second = door(ws).runs.run_pipeline("shop", {"status": SCRIPT})
        page = signed_client(ws, "viewer").get("/assets/shop.orders")
    assert page.status_code == 200, page.text
    text = page.text
    assert '<h2 id="checks">Checks</h2>' in text
    found = r'<tr class="check-[a-z]+ check-[a-z]+"><td><code>([^<]+)</code></td>(.*?)</tr>'
    rows = dict(re.findall(found, text, re.S))
    assert set(rows) == {"accepted_values(status)", "unique(order_id)"}
    warned = rows["accepted_values(status)"]
    assert "✗</span> failed" in warned and "1 of 2" in warned
    assert f'href="/runs/{second.id}"' in warned
    assert "✓</span> passed" in rows["unique(order_id)"]
    history = text[text.index("Recent results") : text.index("</details>")]
    # Two checks per run, each row linking its run (the link and its text).
    assert history.count(first.id) == 4 and history.count(second.id) == 4
    assert SCRIPT not in text
