"""A real Prometheus scrapes a running `legato up` with an API token, and PromQL sees the runs.

The test starts its own Prometheus (Debian's ``prometheus`` package, installed by
scripts/test.sh) on a free port of 127.0.0.1 with its data under tmp_path, scraping every
second; it never touches a system service. docs/monitoring.md's example alert expressions
are evaluated by the same server.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    Daemons,
    cli,
    free_port,
    make_project,
    project_token,
    wait_for,
)

PROMETHEUS = Path("/usr/bin/prometheus")
DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"

FLOWS = """
from legato import pipeline, task

@task(in_process=True)
def fine() -> int:
    return 1

@task(in_process=True)
def breaks() -> int:
    raise ValueError("no luck")

@pipeline
def good():
    fine()

@pipeline
def bad():
    breaks()
"""

pytestmark = pytest.mark.slow


def _need_prometheus() -> None:
    if PROMETHEUS.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{PROMETHEUS} is missing on CI: scripts/test.sh installs it")
    pytest.skip(f"{PROMETHEUS} is missing: apt-get install prometheus (scripts/test.sh does)")


class Prometheus:
    """A Prometheus server of the test's own, and PromQL through its HTTP API."""

    def __init__(self, tmp: Path, targets: list[str], token: str) -> None:
        token_file = tmp / "legato-token"
        token_file.write_text(token, encoding="utf-8")
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: legato\n"
            "    metrics_path: /metrics\n"
            "    authorization:\n"
            "      type: Bearer\n"
            f"      credentials_file: {token_file}\n"
            "    static_configs:\n"
            f"      - targets: {targets!r}\n",
            encoding="utf-8",
        )
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text(errors='replace')}")
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant query; fails the test when PromQL refuses it."""
        answer = self.http.get("/api/v1/query", params={"query": promql}).json()
        assert answer["status"] == "success", (promql, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The one value an instant query returns, or None when it returns nothing."""
        found = self.query(promql)
        return float(found[0]["value"][1]) if found else None

    def targets(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.http.get("/api/v1/targets").json()["data"][
            "activeTargets"
        ]
        return found

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", FLOWS)


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    _need_prometheus()
    started: list[Prometheus] = []

    def start(targets: list[str], token: str) -> Prometheus:
        server = Prometheus(tmp_path, targets, token)
        started.append(server)
        wait_for(server.ready, timeout=30, what="prometheus ready")
        return server

    yield start
    for server in started:
        server.stop()


def _examples() -> list[str]:
    """The PromQL examples of docs/monitoring.md (its ```promql blocks)."""
    found = re.findall(r"```promql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [" ".join(block.split()) for block in found]


def test_prometheus_scrapes_up_with_a_token_and_sees_the_runs(
    project: Path, daemons: Daemons, prometheus_for: Any
) -> None:
    up = daemons.up(project)
    up.wait_output("web UI at")
    url = re.search(r"web UI at (http://[^/\s]+)/", up.output())
    assert url is not None
    web = daemons.up(project, command="web")  # a second process on the same store
    web.wait_output("legato web:")
    web_url = re.search(r"legato web: (http://[^/\s]+)/", web.output())
    assert web_url is not None
    targets = [u.group(1).removeprefix("http://") for u in (url, web_url)]
    anonymous = httpx.get(f"{url.group(1)}/metrics", timeout=10)
    assert anonymous.status_code == 401  # the scrape below passes only with its token

    prom = prometheus_for(targets, project_token(project, "viewer"))
    wait_for(lambda: prom.value('sum(up{job="legato"})') == 2.0, timeout=30, what="scrapes")
    assert {t["health"] for t in prom.targets()} == {"up"}, prom.targets()
    # The two processes are told apart by their own labels, whatever their address.
    roles = prom.query('count by (role, process) (legato_executor_workers_busy)')
    assert sorted(r["metric"]["role"] for r in roles) == ["up", "web"]
    web_process = next(r["metric"]["process"] for r in roles if r["metric"]["role"] == "web")
    assert web_process.endswith(f":{web.pid}")
    # Before any run: the failure counter is there at 0, so increase() sees the first one.
    failed = 'legato_runs_finished_total{role="up",pipeline="bad",state="failed"}'
    assert prom.value(failed) == 0.0

    for name in ("good", "bad"):
        made = cli("submit", name, project=project)
        assert made.returncode == 0, made.stderr

    wait_for(lambda: prom.value(failed) == 1.0, timeout=60, what="the failed run in PromQL")
    succeeded = 'legato_runs_finished_total{role="up",pipeline="good",state="succeeded"}'
    wait_for(lambda: prom.value(succeeded) == 1.0, timeout=30, what="the good run in PromQL")
    assert prom.value('legato_task_attempts_total{pipeline="bad",outcome="failed"}') == 1.0
    assert prom.value('legato_runs_started_total{pipeline="good"}') == 1.0
    durations = 'legato_task_attempt_duration_seconds_count{pipeline="good",task="fine"}'
    assert prom.value(durations) == 1.0
    # Each sample names the process it came from: the daemon's id and its role.
    series = prom.query(succeeded)[0]["metric"]
    assert series["role"] == "up"
    assert series["process"].split(":")[1] == str(up.pid)

    # docs/monitoring.md's alert expressions: PromQL takes each, and the figures each one
    # compares (what is left of its first threshold) are there.
    examples = _examples()
    assert len(examples) == 3
    for expr in examples:
        prom.query(expr)
        figures = expr.split(" > ")[0].lstrip("(")
        assert prom.query(figures), f"no data for {figures!r}"
    # The two about failures fire: a run of `bad` failed, and its only attempt.
    fired = [{r["metric"].get("pipeline") for r in prom.query(e)} for e in examples[:2]]
    assert fired == [{"bad"}, {"bad"}]
    assert prom.query(examples[2]) == []  # the daemon ticks: that one stays quiet
