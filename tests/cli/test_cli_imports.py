"""A command pays only for what it uses: running a pipeline from the command line imports
neither the single sign-on libraries (pysaml2 alone takes half a second), nor the HTTP client
alert channels send with, nor the file watcher of `legato dev`, nor the services it does not
call (the door makes each one when first asked for)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import make_project

CODE = """
from legato import pipeline, task

@task
def one() -> int:
    return 1

@pipeline
def single():
    one()
"""

PROBE = """
import os
import sys

def report(code):
    heavy = {m.split(".")[0] for m in sys.modules} & {
        "saml2", "authlib", "joserfc", "httpx", "watchfiles"
    }
    heavy |= set(sys.modules) & {
        "legato.services.automation_service", "legato.services.alerting",
        "legato.services.overview_service", "legato.services.lineage_service",
        "legato.services.materialize_service", "legato.services.catalog",
    }
    print("exit", code, "heavy", ",".join(sorted(heavy)) or "none", flush=True)

leave = os._exit
os._exit = lambda code: (report(code), leave(code))  # the command leaves through os._exit
from legato.cli.main import main
sys.argv = ["legato", "run", "single", "--project", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    report(exc.code)
"""


def test_legato_run_does_not_import_the_sign_on_or_alert_libraries(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", CODE, workers=1)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, timeout=300
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert last == "exit 0 heavy none", done.stdout + done.stderr
