"""``legato alerts``: recent alerts and the state of their messages; silencing a rule for a
while, and sending a rule's test message through its channels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from legato.cli.console import escape, rich_console
from legato.cli.main import JsonOpt, ProjectOpt, app, fail, out, user_errors, workspace

if TYPE_CHECKING:
    from legato.services.alerting import AlertView

alerts_app = typer.Typer(help="Recent alerts, silences and test messages of alert rules.")
app.add_typer(alerts_app, name="alerts")


def _when(t: Any) -> str:
    return "" if t is None else f"{t:%Y-%m-%d %H:%M:%S}"


def _delivery_state(view: AlertView) -> str:
    if view.alert.silenced:
        return "silenced"
    if not view.deliveries:
        return "held for its group" if not view.alert.notified else "grouped"
    return ", ".join(
        f"{d.channel} {d.kind} {d.state}" + (f" ({d.attempts} tries)" if d.attempts > 1 else "")
        for d in view.deliveries
    )


def _as_json(view: AlertView) -> dict[str, Any]:
    a = view.alert
    return {
        "id": a.id,
        "rule": a.rule,
        "subject": a.subject,
        "condition": a.condition,
        "state": a.state.value,
        "pipeline": a.pipeline,
        "run_id": a.run_id,
        "title": a.title,
        "opened_at": a.opened_at.isoformat(),
        "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        "silenced": a.silenced,
        "deliveries": [
            {
                "channel": d.channel,
                "kind": d.kind,
                "state": d.state.value,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_try_at": d.next_try_at.isoformat(),
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
            }
            for d in view.deliveries
        ],
    }


@alerts_app.callback(invoke_without_command=True)
def alerts_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many alerts.")] = 30,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List recent alerts, newest first, with the state of their messages."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from legato.cli.render import print_json

    with user_errors(), workspace(project) as door:
        views = door.alerts.recent(limit)
        silences = door.alerts.silences()
        if json_out:
            print_json(
                {
                    "alerts": [_as_json(v) for v in views],
                    "silences": [
                        {"rule": s.rule, "until": s.until.isoformat(), "by": s.by}
                        for s in silences
                    ],
                }
            )
            return
        table = Table(box=None, header_style="bold")
        for col in ("opened (UTC)", "rule", "state", "alert", "messages"):
            table.add_column(col, no_wrap=col != "alert")
        for v in views:
            table.add_row(
                _when(v.alert.opened_at), v.alert.rule, v.alert.state.value,
                escape(v.alert.title), escape(_delivery_state(v)),
            )
        rich_console().print(table)
        if not views:
            out.print("no alerts")
        for s in silences:
            out.print(
                escape(f"silenced: {s.rule} until {_when(s.until)} UTC (by {s.by})"),
                highlight=False,
            )


@alerts_app.command("silence")
def alerts_silence(
    rule: Annotated[str, typer.Argument(metavar="RULE")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d.")],
    project: ProjectOpt = Path("."),
) -> None:
    """Silence a rule for a while: its alerts are recorded, not sent."""
    with user_errors(), workspace(project) as door:
        s = door.alerts.silence(rule, duration)
        out.print(escape(f"silenced {s.rule} until {_when(s.until)} UTC"), highlight=False)


@alerts_app.command("unsilence")
def alerts_unsilence(
    rule: Annotated[str, typer.Argument(metavar="RULE")], project: ProjectOpt = Path(".")
) -> None:
    """End a rule's silence."""
    with user_errors(), workspace(project) as door:
        if not door.alerts.unsilence(rule):
            raise fail(f"{rule} was not silenced")
        out.print(escape(f"{rule} is no longer silenced"), highlight=False)


@alerts_app.command("test")
def alerts_test(
    rule: Annotated[str, typer.Argument(metavar="RULE")], project: ProjectOpt = Path(".")
) -> None:
    """Send a test message through the rule's channels now, and say how each went."""
    with user_errors(), workspace(project) as door:
        results = door.alerts.test(rule)
    failed = 0
    for r in results:
        if r.error is None:
            out.print(escape(f"{r.channel}: arrived"), highlight=False)
        else:
            failed += 1
            out.print(escape(f"{r.channel}: failed: {r.error}"), highlight=False)
    if failed:
        raise typer.Exit(1)
