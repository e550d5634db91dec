"""A command pays only for what it uses: running a pipeline from the command line imports
neither the single sign-on libraries (pysaml2 alone takes half a second), nor the HTTP client
alert channels send with, nor the file watcher of `legato dev`, nor the services it does not
call (the door makes each one when first asked for), nor the cipher of secrets when none is
read, nor PostgreSQL's dialect on a SQLite store; and typer builds only the command named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import LEGATO, make_project

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
        "saml2", "authlib", "joserfc", "httpx", "watchfiles", "cryptography"
    }
    heavy |= set(sys.modules) & {
        "legato.services.automation_service", "legato.services.alerting",
        "legato.services.overview_service", "legato.services.lineage_service",
        "legato.services.materialize_service", "legato.services.catalog",
        "sqlalchemy.dialects.postgresql",
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
    # A first run creates the store (its migrations declare every index, for every dialect).
    first = subprocess.run(
        [LEGATO, "run", "single", "--project", str(root)],
        capture_output=True, text=True, timeout=300,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, timeout=300
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert last == "exit 0 heavy none", done.stdout + done.stderr


def test_a_command_line_naming_one_command_builds_only_that_one() -> None:
    import typer.main

    from legato.cli.main import _only, app

    names = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"run", "runs", "db", "users", "backfill"} <= set(names)
    for name in names:
        trimmed = typer.main.get_command(_only(["legato", name, "--help"]))
        assert list(trimmed.commands) == [name]  # type: ignore[attr-defined]
    # No command, an option first, or a misspelt name: the whole app, for its help and hints.
    for argv in (["legato"], ["legato", "--help"], ["legato", "rn"]):
        assert _only(argv) is app


def test_legato_help_still_lists_every_command() -> None:
    done = subprocess.run(
        [LEGATO, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for name in ("run", "backfill", "partitions", "users", "db", "certs"):
        assert f" {name} " in done.stdout
