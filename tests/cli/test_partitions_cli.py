"""`legato partitions P`: a summary by default (counts by state, the failed and missing
ranges, counts per day with --by), the partitions themselves with --state, --from/--to or
--json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project

CODE = """
from legato import pipeline, task
from legato.partitions import daily


@task
def load(fail: bool) -> int:
    if fail:
        raise ValueError("bad day")
    return 1


@pipeline(partitions=daily(start="2026-01-01", end="2026-01-11", tz="UTC"))
def days(fail: bool = False):
    load(fail)
"""


def test_a_summary_by_default_and_the_partitions_on_request(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", CODE)
    for day, fail in (("01", "false"), ("02", "false"), ("05", "true"), ("06", "true")):
        cli("run", "days", "--partition", f"2026-01-{day}", "--param", f"fail={fail}", "-q",
            project=project)
    done = cli("partitions", "days", project=project)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "10 partitions: 2 failed, 6 never run, 2 succeeded"
    assert lines[1] == "failed: 2026-01-05 .. 2026-01-06 (2)"
    assert lines[2] == "missing: 2026-01-03 .. 2026-01-04 (2), 2026-01-07 .. 2026-01-10 (4)"
    failed = cli("partitions", "days", "--state", "failed", project=project)
    assert [ln.split()[:2] for ln in failed.stdout.splitlines()[1:3]] == [
        ["2026-01-05", "failed"], ["2026-01-06", "failed"],
    ]
    assert failed.stdout.splitlines()[-1] == "2 partitions"
    listed = json.loads(cli("partitions", "days", "--json", "--from", "2026-01-02", "--to",
                            "2026-01-03", project=project).stdout)
    assert [(p["key"], p["state"]) for p in listed] == [
        ("2026-01-02", "succeeded"), ("2026-01-03", "never run"),
    ]
    by_month = cli("partitions", "days", "--by", "month", project=project).stdout
    assert by_month.splitlines()[-1].split() == ["2026-01", "2", "6", "2"]
    wrong = cli("partitions", "days", "--state", "broken", project=project)
    assert wrong.returncode != 0 and "unknown partition state 'broken'" in wrong.stderr
