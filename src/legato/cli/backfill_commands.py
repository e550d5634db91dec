"""CLI commands of backfills: `legato backfill` makes one; `legato backfills` lists them,
shows one with its stretches or keys, pauses, resumes or cancels it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.main import (
    JsonOpt,
    ProjectOpt,
    app,
    out,
    parse_params,
    user_errors,
    workspace,
)
from legato.cli.operate import print_data, print_rows, when_text

if TYPE_CHECKING:
    from legato.services.backfill_views import BackfillView

backfills_app = typer.Typer(help="List backfills; show, pause, resume or cancel one.")
app.add_typer(backfills_app, name="backfills")


@app.command()
def backfill(
    pipeline: Annotated[str, typer.Argument(metavar="PIPELINE")],
    keys: Annotated[
        list[str] | None,
        typer.Argument(help="Partition keys (or use --from/--to).", show_default=False),
    ] = None,
    first: Annotated[str | None, typer.Option("--from", help="First partition key.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last partition key.")] = None,
    all_partitions: Annotated[
        bool, typer.Option("--all", help="Run every partition, not only missing and failed ones.")
    ] = False,
    max_concurrent: Annotated[int, typer.Option(help="Backfill runs at once.")] = 2,
    priority: Annotated[int | None, typer.Option(help="Queue priority of its runs.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-P", help="key=value")] = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Backfill partitions: the daemon runs them a few at a time, behind fresh runs."""
    with user_errors(), workspace(project) as door:
        pipe = door.project.pipeline(pipeline)
        raw = parse_params(param or [])
        params = pipe.params_to_json(pipe.validate_params(raw, from_text=True)) if raw else None
        b = door.automation.create_backfill(
            pipeline,
            first=first,
            last=last,
            keys=keys or (),
            all_partitions=all_partitions,
            max_concurrent=max_concurrent,
            priority=priority,
            params=params,
        )
        if json_out:
            from legato.cli.scripted import backfill_json

            print_data(backfill_json(door, b.id))
            return
        v = door.automation.backfill(b.id)
        out.print(
            f"backfill [bold]{b.id}[/] of {b.pipeline}: {v.total} partitions "
            f"({_span(v)}), {b.max_concurrent} at a time",
            highlight=False,
        )


def _span(v: BackfillView) -> str:
    """Where a backfill's partitions lie, in a few words."""
    stretches = len(v.ranges) + len(v.keys) + v.left_off
    more = f" in {stretches} stretches" if stretches > 1 else ""
    return f"{v.first} .. {v.last}{more}" if v.first != v.last else v.first


@backfills_app.callback(invoke_without_command=True)
def backfills_list(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline")] = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List backfills with their progress."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        views = door.automation.backfills(pipeline=pipeline)
        if json_out:
            from legato.cli.scripted import backfill_view_json

            print_data([backfill_view_json(v) for v in views])
            return
        rows = [
            (
                v.record.id,
                v.record.pipeline,
                str(v.record.state),
                f"{v.done}/{v.total}",
                " ".join(f"{s}={n}" for s, n in sorted(v.runs.items())),
                _span(v),
                when_text(v.record.created_at),
            )
            for v in views
        ]
        columns = ("backfill", "pipeline", "state", "done", "runs", "range", "created (UTC)")
        print_rows(columns, rows, "no backfills")


@backfills_app.command("show")
def backfills_show(
    backfill_id: str,
    keys: Annotated[
        bool, typer.Option("--keys", help="List its partition keys with their runs, a page.")
    ] = False,
    offset: Annotated[int, typer.Option(help="With --keys: the first key's position.")] = 0,
    limit: Annotated[int, typer.Option(help="With --keys: keys at most.")] = 100,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """One backfill: its progress and its partitions as ranges; --keys lists the keys."""
    with user_errors(), workspace(project) as door:
        if keys:
            page = door.automation.backfill_keys(backfill_id, offset=offset, limit=limit)
            if json_out:
                print_data(page)
                return
            rows = [(k.key, k.state, k.run_id or "") for k in page.keys]
            print_rows(("partition", "state", "run"), rows, "no keys here")
            if page.next_offset is not None:
                out.print(f"more: --offset {page.next_offset} (of {page.total})", highlight=False)
            return
        v = door.automation.backfill(backfill_id)
        if json_out:
            from legato.cli.scripted import backfill_view_json

            print_data(backfill_view_json(v))
            return
        r = v.record
        counts = " ".join(f"{s}={n}" for s, n in sorted(v.runs.items()))
        out.print(
            f"backfill [bold]{r.id}[/] of {r.pipeline}: {r.state}, {v.done}/{v.total} done, "
            f"{v.not_started} not started; runs: {counts or 'none yet'}",
            highlight=False,
        )
        stretches = [(x.first, x.last, str(x.count)) for x in v.ranges]
        stretches += [(k, k, "1") for k in v.keys]
        print_rows(("first", "last", "partitions"), stretches, "no partitions")
        if v.left_off:
            out.print(f"... and {v.left_off} more stretches", highlight=False)


def _set_backfill(backfill_id: str, project: Path, state: str) -> None:
    from legato.domain.states import BackfillState

    with user_errors(), workspace(project) as door:
        v = door.automation.set_backfill_state(backfill_id, BackfillState(state))
        out.print(
            f"backfill {v.record.id}: {v.record.state} ({v.done}/{v.total} done)", highlight=False
        )


@backfills_app.command("pause")
def backfills_pause(backfill_id: str, project: ProjectOpt = Path(".")) -> None:
    """Pause: no more of its runs start until resumed."""
    _set_backfill(backfill_id, project, "paused")


@backfills_app.command("resume")
def backfills_resume(backfill_id: str, project: ProjectOpt = Path(".")) -> None:
    """Resume a paused backfill."""
    _set_backfill(backfill_id, project, "running")


@backfills_app.command("cancel")
def backfills_cancel(backfill_id: str, project: ProjectOpt = Path(".")) -> None:
    """Cancel a backfill and its unfinished runs."""
    _set_backfill(backfill_id, project, "canceled")


# -- queue -------------------------------------------------------------------------------
