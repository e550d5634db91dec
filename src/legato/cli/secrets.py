"""``legato secrets``: values tasks read as ``ctx.secrets["NAME"]``, sealed in the store.

A value is read from standard input, or from a prompt that does not echo it when standard
input is a terminal; it never appears as an argument (shell history, the process list). Like
every local command, these act on the project's own store as its trusted admin.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from legato.cli.console import escape, rich_console
from legato.cli.main import ProjectOpt, app, fail, out, user_errors, workspace

secrets_app = typer.Typer(help="Secrets tasks read as ctx.secrets[NAME], encrypted at rest.")
app.add_typer(secrets_app, name="secrets")


def _value() -> str:
    if sys.stdin.isatty():
        value: str = typer.prompt("value", hide_input=True)
        return value
    data = sys.stdin.read()
    # One trailing newline is what `echo` and here-strings add: not part of the value.
    return data[:-1] if data.endswith("\n") else data


@secrets_app.command("set")
def secrets_set(name: str, project: ProjectOpt = Path(".")) -> None:
    """Set a secret; its value is read from standard input (or a hidden prompt)."""
    value = _value()
    if not value:
        raise fail("the value is empty (give it on standard input)")
    with user_errors(), workspace(project) as door:
        door.secrets.set(name, value)
    out.print(f"set {escape(name)}", highlight=False)


@secrets_app.command("list")
def secrets_list(
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List secrets: names and dates, never values."""
    with user_errors(), workspace(project) as door:
        found = door.secrets.names()
    if json:
        from legato.cli.render import print_json

        print_json(
            [
                {
                    "name": s.name,
                    "created_at": s.created_at,
                    "updated_at": s.updated_at,
                    "updated_by": s.updated_by,
                }
                for s in found
            ]
        )
        return
    if not found:
        out.print("no secrets (legato secrets set NAME < value-file)")
        return
    from rich.table import Table

    table = Table("name", "created", "updated", "by", box=None)
    for s in found:
        table.add_row(
            escape(s.name),
            f"{s.created_at:%Y-%m-%d %H:%M}",
            f"{s.updated_at:%Y-%m-%d %H:%M}",
            escape(s.updated_by),
        )
    rich_console().print(table)


@secrets_app.command("delete")
def secrets_delete(name: str, project: ProjectOpt = Path(".")) -> None:
    """Delete a secret."""
    with user_errors(), workspace(project) as door:
        door.secrets.delete(name)
    out.print(f"deleted {escape(name)}", highlight=False)


@secrets_app.command("rotate-key")
def secrets_rotate_key(
    drop_old: Annotated[
        bool,
        typer.Option("--drop-old", help="Then remove the old keys from the key file."),
    ] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Add a new key and encrypt every secret again under it, while runs go on."""
    with user_errors(), workspace(project) as door:
        done = door.secrets.rotate_key(drop_old=drop_old)
    if done.new_ring is not None:
        sys.stderr.write(
            f"new key {done.primary}: set LEGATO_SECRET_KEYS to this value wherever Legato "
            "runs (web, scheduler, workers), then run `legato secrets rotate-key` again to "
            "encrypt every secret under it:\n"
        )
        sys.stdout.write(done.new_ring + "\n")
        return
    out.print(f"{done.resealed} secret(s) encrypted under key {done.primary}", highlight=False)
    if done.dropped:
        out.print(f"dropped old key(s): {', '.join(done.dropped)}", highlight=False)
    elif done.retired:
        out.print(
            f"old key(s) no secret needs any more, which may be dropped: {', '.join(done.retired)}",
            highlight=False,
        )
