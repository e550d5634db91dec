"""``legato checks`` and the checks ``legato show`` lists under their tasks."""

from __future__ import annotations

import json
from pathlib import Path

from legato.services.workspace import Workspace
from tests.engine.test_run_checks import CODE
from tests.helpers import cli, door, make_project
from tests.quality.test_checks_doc import blocks as doc_blocks


def test_checks_listed_per_run_and_asset_and_shown_under_their_task(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", CODE)
    with Workspace(root) as ws:
        good = door(ws).runs.run_pipeline("shop", {"bad": False})
        bad = door(ws).runs.run_pipeline("shop", {"bad": True})

    shown = cli("show", bad.id, project=root)
    assert shown.returncode == 0, shown.stderr
    lines = [line.strip() for line in shown.stdout.splitlines()]
    orders = next(i for i, line in enumerate(lines) if line.startswith("orders"))
    report = next(i for i, line in enumerate(lines) if line.startswith("report"))
    # The task's checks follow its row, each marked with its outcome.
    [unique] = [line for line in lines[orders:report] if line.startswith("✗ unique(order_id)")]
    assert "failed (block)" in unique and "2 of 4 rows failed" in unique
    assert "✓ row_count" in shown.stdout

    as_json = json.loads(cli("show", bad.id, "--json", project=root).stdout)
    assert {(c["task"], c["check"], c["outcome"]) for c in as_json["checks"]} >= {
        ("orders", "unique(order_id)", "failed"), ("orders", "row_count", "passed")}

    listed = cli("checks", "--run", bad.id, "--json", project=root)
    assert listed.returncode == 0, listed.stderr
    got = {c["check"]: c for c in json.loads(listed.stdout)}
    assert got["unique(order_id)"]["failed_count"] == 2
    assert got["unique(order_id)"]["sample"][0] == {"order_id": 2, "status": "paid"}
    assert {c["run_id"] for c in got.values()} == {bad.id}

    history = cli("checks", "--asset", "shop.orders", "--json", project=root)
    unique = [(c["run_id"], c["outcome"]) for c in json.loads(history.stdout)
              if c["check"] == "unique(order_id)"]
    assert unique == [(bad.id, "failed"), (good.id, "passed")]

    table = cli("checks", "--asset", "shop.orders", project=root)
    assert table.returncode == 0, table.stderr
    assert "unique(order_id)" in table.stdout and "2 of 4 rows failed" in table.stdout
    assert "no check results yet" in cli("checks", "--asset", "none", project=root).stdout

    # docs/checks.md's commands, with this run's id.
    for line in doc_blocks("sh")[0].splitlines():
        args = line.split("#")[0].split()[1:]
        args = [bad.id if a == "01a24a39561f" else a for a in args]
        done = cli(*args, project=root)
        assert done.returncode == 0 and "unique(order_id)" in done.stdout, (line, done.stderr)
