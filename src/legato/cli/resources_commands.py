"""``legato resources``: the resources of the project's environment, and their health check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from legato.cli.console import escape, rich_console
from legato.cli.main import EnvOpt, JsonOpt, ProjectOpt, app, out, user_errors, workspace

resources_app = typer.Typer(
    help="Resources of legato.toml's [resources]: list them, check that each answers.",
    invoke_without_command=True,
)
app.add_typer(resources_app, name="resources")


@resources_app.callback()
def resources_list(
    ctx: typer.Context,
    json: JsonOpt = False,
    env: EnvOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """List the resources: kind, settings (secrets masked), pool, the tasks asking for them."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        found = door.resources.describe()
    if json:
        from legato.cli.render import print_json

        print_json(found)
        return
    if not found:
        out.print("no resources (declare them in legato.toml: [resources.NAME] with a kind)")
        return
    from rich.table import Table

    table = Table("resource", "kind", "settings", "pool", "used by", box=None)
    for r in found:
        settings = ", ".join(f"{k}={_shown(v)}" for k, v in r.settings.items())
        table.add_row(
            escape(r.name),
            escape(r.kind),
            escape(settings),
            escape(r.pool or ""),
            escape(", ".join(r.tasks)),
        )
    rich_console().print(table)


@resources_app.command("check")
def resources_check(
    names: Annotated[
        list[str] | None, typer.Argument(help="Resources to check (default: all).")
    ] = None,
    json: JsonOpt = False,
    env: EnvOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Open each resource, run its kind's check, close it: ok or failed with the reason.
    Exits 1 when one failed."""
    with user_errors(), workspace(project) as door:
        results = door.resources.check(names or None)
    if json:
        from legato.cli.render import print_json

        print_json(results)
    elif not results:
        out.print("no resources to check")
    else:
        for r in results:
            mark = "[green]ok[/]" if r.ok else "[red]failed[/]"
            out.print(
                f"{mark}  {escape(r.name)} ({escape(r.kind)}): {escape(r.detail)} "
                f"[dim]{r.seconds:.2f}s[/]",
                highlight=False,
                soft_wrap=True,
            )
    if any(not r.ok for r in results):
        raise typer.Exit(1)


def _shown(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)

