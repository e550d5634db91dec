"""``legato materialize KEY``: run the asset's producing task and what it needs, reusing the
inputs that are still good, here (as ``legato run``) or queued for a daemon (``--queue``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from legato.cli.console import escape
from legato.cli.main import (
    EnvOpt,
    JsonOpt,
    ProjectOpt,
    _drive_and_report,
    app,
    out,
    parse_params,
    user_errors,
    workspace,
)

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.door import Door


@app.command()
def materialize(
    key: Annotated[str, typer.Argument(help='The asset\'s key, e.g. "warehouse.daily_sales".')],
    partition: Annotated[
        str | None, typer.Option("--partition", help="The partition (a partitioned asset).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A param as key=value; repeat.")
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option("--pipeline", help="The producing pipeline, when several produce it."),
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Only queue the run, for a running daemon.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final line.")] = False,
    json_out: JsonOpt = False,
    env: EnvOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Materialize an asset: run its producing task and the tasks upstream of it, reusing
    what the newest run alike made while it is fresh; other tasks are skipped. Exit 1 if the
    run fails."""
    with user_errors():
        params = parse_params(param or [])
        with workspace(project) as door:
            given: dict[str, Any] = {
                "partition": partition, "params": params, "pipeline": pipeline, "from_text": True,
            }  # fmt: skip
            if queue:
                _queue(door, key, given, json_out)
                return

            def start(**kw: Any) -> RunRecord:
                return door.materialize.here(key, **given, **kw)

            if json_out:
                from legato.cli.scripted import drive_as_json

                drive_as_json(door, start)
                return
            _drive_and_report(door, _saying(door, start, quiet), quiet, 0)


def _queue(door: Door, key: str, given: dict[str, Any], json_out: bool) -> None:
    run = door.materialize.queue(key, **given)
    if json_out:
        from legato.cli.render import print_json

        print_json(run)
        return
    out.print(f"queued run [bold]{run.id}[/] of {run.pipeline} ({run.origin})", highlight=False)


def _saying(door: Door, start: Callable[..., RunRecord], quiet: bool) -> Callable[..., RunRecord]:
    """``start``, telling once the run exists what it reuses and skips (its origin events)."""

    def started(on_created: Callable[[RunRecord], None], **kw: Any) -> RunRecord:
        def created(run: RunRecord) -> None:
            on_created(run)
            if not quiet:
                for e in door.catalog.events(run.id, 0, 100):
                    if e.kind == "origin" and e.message:
                        out.print(f"  {escape(e.message)}", highlight=False)

        return start(on_created=created, **kw)

    return started
