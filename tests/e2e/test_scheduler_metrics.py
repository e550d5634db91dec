"""`legato scheduler --metrics-port` serves its metrics without a web server, and
`--log-format json` writes one JSON object per line, carrying the run id on a run's lines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import DaemonProcess, cli, make_project, project_token, wait_for

FLOWS = """
from legato import pipeline, task

@task
def fine() -> int:
    return 1

@pipeline
def good():
    fine()
"""


def _doc_json_lines() -> list[str]:
    """The ```json example of docs/monitoring.md's "Daemon logs" section, line by line."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text("utf-8")
    section = doc.split("\n## Daemon logs\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _lines(daemon: DaemonProcess) -> list[dict[str, Any]]:
    # Every line the daemon wrote must be a JSON object (the last may be half written).
    text = daemon.output()
    done = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in done.splitlines() if line.strip()]


def test_a_scheduler_serves_metrics_on_its_port_and_logs_json_with_run_ids(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "proj", FLOWS)
    token = project_token(project, "viewer")
    daemon = DaemonProcess(
        ["scheduler", "--project", str(project), "--metrics-port", "0", "--log-format", "json"],
        tmp_path / "scheduler.log",
    )
    try:
        daemon.wait_output("metrics at http")
        said = next(line["message"] for line in _lines(daemon) if "metrics at" in line["message"])
        found = re.search(r"(http://\S+/metrics)", said)
        assert found is not None, said
        url = found.group(1)
        assert httpx.get(url, timeout=10).status_code == 401
        signed = {"Authorization": f"Bearer {token}"}
        scrape = httpx.get(url, headers=signed, timeout=10)
        assert scrape.status_code == 200, scrape.text
        for counted in ("tick_duration_seconds_count", "tick_lateness_seconds_count"):
            assert re.search(
                rf'legato_scheduler_{counted}\{{process="[^"]+",role="scheduler"\}} [1-9]',
                scrape.text,
            ), (counted, scrape.text[:2000])
        last = re.search(
            r'legato_scheduler_last_tick_timestamp_seconds\{[^}]+\} (\S+)', scrape.text
        )
        assert last is not None and float(last.group(1)) > 1.7e9  # a time, not 0

        made = cli("submit", "good", "--json", project=project)
        assert made.returncode == 0, made.stderr
        run_id = json.loads(made.stdout)["id"]
        ended = f"run {run_id} of good succeeded"
        wait_for(
            lambda: any(line["message"] == ended for line in _lines(daemon)),
            timeout=60,
            what="the run's end in the log",
        )
        about_run = [line for line in _lines(daemon) if run_id in line["message"]]
        assert len(about_run) >= 2  # started, then ended
        for line in about_run:
            assert line["run_id"] == run_id, line
            assert line["pipeline"] == "good", line
            assert {"time", "level", "logger"} <= set(line), line
        # docs/monitoring.md shows a run's start and end as they are written.
        documented = [json.loads(x) for x in _doc_json_lines()]
        assert [set(x) for x in documented] == [set(about_run[0]), set(about_run[-1])]
        assert [x["message"].split(" ", 3)[0] for x in documented] == [
            line["message"].split(" ", 3)[0] for line in (about_run[0], about_run[-1])
        ]
        finished = httpx.get(url, headers=signed, timeout=10).text
        assert re.search(
            r'legato_runs_finished_total\{pipeline="good",process="[^"]+",role="scheduler",'
            r'state="succeeded"\} 1\.0',
            finished,
        ), finished[:3000]
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.output()
    assert _lines(daemon)[-1]["message"] == "stopped"
