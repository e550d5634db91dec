"""``--json`` for the commands that start runs, and for logs: one JSON document on stdout.

Scripts read run ids and states from it instead of parsing text. Nothing else is written to
stdout (errors go to stderr); the shapes are those of ``legato show --json`` and
``legato backfills --json``, which follow the API's objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import typer

from legato.cli.render import print_json

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.backfill_views import BackfillView
    from legato.services.door import Door
    from legato.services.run_service import LogEntry


def run_json(door: Door, run_id: str) -> dict[str, Any]:
    """A run as ``legato show --json`` prints it: the run, its tasks, their attempts and the
    results of their checks."""
    from legato.cli.check_commands import check_json

    run = door.runs.find_run(run_id)
    checked = door.checks.of_run(run.id)
    return {
        "run": run,
        "tasks": door.runs.task_runs(run.id),
        "attempts": door.runs.attempts(run.id),
        "checks": [check_json(c) for task in checked.values() for c in task],
        "pruned": sorted(door.runs.pruned(run.id)),
    }


def drive_as_json(door: Door, start: Callable[..., RunRecord]) -> None:
    """Drive the run ``start`` makes without a live view, then print it; exit 1 unless it
    succeeded (as without ``--json``)."""
    from legato.cli.main import err

    started: list[RunRecord] = []
    try:
        run = start(on_created=started.append)
    except KeyboardInterrupt:
        which = f"run {started[0].id}" if started else "the run"
        err.print(f"interrupted: {which} was canceled", highlight=False)
        raise typer.Exit(130) from None
    print_json(run_json(door, run.id))
    if run.state.value != "succeeded":
        raise typer.Exit(1)


def print_logs(entries: Sequence[LogEntry]) -> None:
    """Each attempt's log with what it holds, oldest first (``[]`` when there is none)."""
    print_json(
        [
            {
                "task_key": e.task_key,
                "attempt": e.attempt,
                "outcome": e.outcome,
                "path": str(e.path),
                "text": e.text(),
            }
            for e in entries
        ]
    )


def backfill_json(door: Door, backfill_id: str) -> dict[str, Any]:
    """A backfill as ``legato backfills --json`` lists it."""
    return backfill_view_json(door.automation.backfill(backfill_id))


def backfill_view_json(v: BackfillView) -> dict[str, Any]:
    """A backfill with its partitions as ranges and named keys (its keys one by one are
    ``legato backfills show ID --keys``), and its runs counted by state."""
    r = v.record
    return {
        "backfill": {
            "id": r.id,
            "pipeline": r.pipeline,
            "state": str(r.state),
            "ranges": [{"first": x.first, "last": x.last, "count": x.count} for x in v.ranges],
            "keys": list(v.keys),
            "left_off": v.left_off,
            "next_index": r.next_index,
            "max_concurrent": r.max_concurrent,
            "priority": r.priority,
            "params": r.params,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "message": r.message,
        },
        "runs": v.runs,
        "done": v.done,
        "total": v.total,
        "not_started": v.not_started,
    }
