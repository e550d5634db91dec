"""The overview's open alerts and SLA misses: a failed run's open alert and a run past its
SLA are listed with links to their runs; a role that may not read alerts is told so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from legato.clock import ManualClock
from legato.security.roles import VIEWER
from legato.services.workspace import Workspace
from tests.helpers import door, signed_client
from tests.services.test_alerting import START, cycle, project, run, running

READS = ", ".join(f'"{p}"' for p in sorted(VIEWER - {"alerts.read"}))
RULES = (
    '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
    '[alerts.slow]\ncondition = "sla"\nwithin = "30m"\nchannels = ["ops"]\n'
    'pipelines = ["ledger"]\n'
    f"[roles]\nruns_only = [{READS}]\n"
)


def test_open_alerts_and_sla_misses_are_on_the_overview(tmp_path: Path, receiver: Any) -> None:
    clock = ManualClock(START)
    with Workspace(project(tmp_path, receiver.url, RULES), clock=clock) as ws:
        d = door(ws)
        failed = run(d, "sales")
        late = running(ws, "r-late", "ledger", START)
        clock.advance(31 * 60)
        cycle(d, clock)
        html = signed_client(ws, "viewer").get("/overview").text
        start = html.index('id="alerts"')
        section = html[start : html.index("</section>", start)]
        opened = section[section.index("open-alerts") : section.index("sla-misses")]
        assert f'href="/runs/{failed.id}"' in opened and "failures" in opened
        missed = section[section.index("sla-misses") :]
        assert f'href="/runs/{late.id}"' in missed and "slow" in missed
        assert f'href="/runs/{failed.id}"' not in missed

        page = signed_client(ws, "runs_only").get("/overview")
        assert page.status_code == 200 and "may not read alerts" in page.text
