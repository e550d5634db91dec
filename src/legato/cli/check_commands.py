"""``legato checks``: data-quality check results with their history, per asset or per run;
and the rows of a run's checks that ``legato show`` prints under their tasks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from legato.cli.console import escape, rich_console
from legato.cli.main import JsonOpt, ProjectOpt, app, out, user_errors, workspace

if TYPE_CHECKING:
    from rich.table import Table

    from legato.domain.records import CheckResultRecord
    from legato.services.check_steps import CheckStep

#: How an outcome is marked: passed, failed, could not be evaluated.
MARKS = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "error": "[yellow]![/]"}
_WARNED = {"failed": "[yellow]✗[/]", "error": "[yellow]![/]"}


def check_json(record: CheckResultRecord) -> dict[str, Any]:
    """A stored result as ``--json`` prints it."""
    r = record.result
    return {
        "id": record.id, "check": r.check_name, "asset": r.asset, "pipeline": r.pipeline,
        "run_id": r.run_id, "task": r.task_key, "partition": r.partition,
        "severity": r.severity, "outcome": r.outcome, "failed_count": r.failed_count,
        "total_count": r.total_count, "sample": list(r.sample), "message": r.message,
        "at": r.at.isoformat(),
    }


def mark(outcome: str, severity: str) -> str:
    """✓, ✗ or !, red when the check blocks, yellow when it only warns."""
    return (_WARNED if severity == "warn" else MARKS).get(outcome, MARKS["passed"])


def counted(failed: int | None, total: int | None) -> str:
    if failed is None:  # a check of the whole data: its message says what it found
        return ""
    return f"{failed} of {total} rows failed"


#: How a check's step is marked, by its state (the run page's graph colours them alike).
STEP_MARKS = {**MARKS, "warned": "[yellow]✗[/]", "not_run": "[dim]·[/]"}


def add_check_rows(table: Table, steps: Sequence[CheckStep]) -> None:
    """A row per check step under its task's row in ``legato show``'s table, in the state
    the run page's graph draws it: passed, failed, warned, error or not run (yet)."""
    for step in steps:
        note = "; ".join(
            x for x in (counted(step.failed_count, step.total_count), step.message) if x
        )
        state = step.state.replace("_", " ")
        table.add_row(
            f"  {STEP_MARKS.get(step.state, MARKS['error'])} {escape(step.name)}",
            f"{state} ({step.severity})", "", "", escape(note),
        )


@app.command("checks")
def checks_command(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset's checks.")] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", metavar="RUN", help="Only this run's checks.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List data-quality check results, newest first: their outcome, the failing rows'
    count, what was found."""
    with user_errors(), workspace(project) as door:
        found = door.checks.results(asset=asset, run_id=run_id, limit=limit)
        if json_out:
            from legato.cli.render import print_json

            print_json([check_json(c) for c in found])
            return
        if not found:
            out.print("no check results yet")
            return
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for col in ("", "check", "asset", "run", "task", "partition", "rows", "at", "message"):
            table.add_column(col)
        for rec in found:
            r = rec.result
            table.add_row(
                mark(r.outcome, r.severity), escape(r.check_name), escape(r.asset or ""),
                r.run_id, escape(r.task_key), escape(r.partition or ""),
                counted(r.failed_count, r.total_count), f"{r.at:%Y-%m-%d %H:%M:%S}",
                escape(r.message),
            )
        rich_console().print(table)
