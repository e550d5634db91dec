"""``legato audit``: the audit trail (who did what, when, from where, how it ended) and
``legato audit verify``, which finds the first row altered or removed since it was written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from legato.cli.console import escape
from legato.cli.main import ProjectOpt, app, fail, out, user_errors, workspace

audit_app = typer.Typer(
    help="The audit trail: every change, sign-in and refusal, hash-chained.",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--since {text!r}: give a date or a date and time, e.g. 2026-12-01") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@audit_app.callback()
def audit(
    ctx: typer.Context,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this actor, e.g. user:ann.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. runs.cancel.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="At or after this date (UTC unless given).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List the audit trail, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        rows = door.audit.entries(
            actor=actor, action=action, since=_since(since), limit=max(1, limit)
        )
    if json:
        from legato.cli.render import print_json

        print_json([{k: getattr(r, k) for k in r.__dataclass_fields__} for r in rows])
        return
    from rich.table import Table

    table = Table("seq", "at (UTC)", "actor", "auth", "from", "action", "target", "outcome",
                  box=None)  # fmt: skip
    for r in rows:
        outcome = r.outcome
        why = r.detail.get("reason") or r.detail.get("error")
        if why:
            outcome += f" ({why})"
        table.add_row(
            str(r.seq),
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            escape(r.actor),
            escape(r.auth),
            escape(r.source),
            escape(r.action),
            escape(r.target or ""),
            escape(outcome),
        )
    out.print(table if rows else "no audit rows match")


@audit_app.command("verify")
def verify(project: ProjectOpt = Path(".")) -> None:
    """Check the hash chain; exit 1 naming the first row altered or removed."""
    with user_errors(), workspace(project) as door:
        broken = door.audit.verify()
    if broken is None:
        out.print("audit trail intact: every row is as it was written")
        return
    out.print(
        f"audit trail broken at row {broken}: it, or a row before it, was altered or removed",
        highlight=False,
    )
    raise typer.Exit(1)
