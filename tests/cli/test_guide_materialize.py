"""docs/guide.md's "Assets", its Materialize part: on the section's project, the commands it
shows materialize an asset here, reusing what an earlier run made, and queue another."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.test_guide_assets import write_project
from tests.helpers import cli


def test_the_materialize_commands_of_the_guide(tmp_path: Path) -> None:
    project = tmp_path / "sales"
    blocks = write_project(project)
    (shown,) = [body for lang, body in blocks if lang == "sh" and "legato materialize" in body]
    here, queued = [re.sub(r"\s+#.*", "", line).split()[1:] for line in shown.splitlines()]
    assert cli("run", "nightly_sales", "--partition", "2026-01-05", project=project).returncode == 0

    r = cli(*here, project=project)
    assert r.returncode == 0, r.stderr
    assert "materialize warehouse.daily_sales: runs daily_sales" in r.stdout
    assert "reuses extract from run" in r.stdout

    r = cli(*queued, "--json", project=project)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert (run["pipeline"], run["state"]) == ("reporting", "queued")
    assert run["origin"] == "materialize:reports.weekly"
