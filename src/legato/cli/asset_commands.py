"""``legato assets``: the asset catalog, and one asset with its materializations."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from legato.cli.console import escape, rich_console
from legato.cli.main import EnvOpt, JsonOpt, ProjectOpt, app, out, user_errors, workspace
from legato.observability.alert_rules import format_duration
from legato.services.asset_freshness import Freshness

assets_app = typer.Typer(
    help="Assets the pipelines produce and read: the catalog, one asset, its materializations.",
    invoke_without_command=True,
)
app.add_typer(assets_app, name="assets")


_STYLE = {"fresh": "green", "stale": "bold red", "never": "yellow"}


def _when(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def _count(value: Any) -> str:
    return "" if value is None else f"{value:,}"


def _times(total: int, partitions: int) -> str:
    said = f"{total:,} time" + ("s" if total != 1 else "")
    if partitions:
        said += f", in {partitions:,} partition" + ("s" if partitions != 1 else "")
    return said


@assets_app.callback()
def assets_list(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option("--search", help="Only keys holding this text.")
    ] = None,
    stale: Annotated[
        bool, typer.Option("--stale", help="Only the assets stale under their freshness policy.")
    ] = False,
    json: JsonOpt = False,
    env: EnvOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """List every asset: key, producing task, partitions, last materialized, rows, and
    freshness (fresh, stale, never; blank without a policy)."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        found = door.assets.catalog(search=search, stale=stale)
    if json:
        from legato.cli.render import print_json

        print_json(found)
        return
    if not found:
        out.print(
            "no stale assets"
            if stale
            else 'no assets (declare them on tasks: @task(produces="warehouse.sales"))'
        )
        return
    from rich.table import Column, Table

    # The key is what a user types next (legato assets show KEY): never cut short.
    widest = max(len(e.key) for e in found)
    table = Table(
        Column("asset", no_wrap=True, min_width=widest),
        "producer", "partitions", "last materialized", "rows", "freshness",
        box=None,
    )  # fmt: skip
    for e in found:
        last = e.latest
        parts = (e.partitions or {}).get("kind", "")
        made = "" if last is None else _when(last.at)
        if last is not None and last.partition is not None:
            made += f" ({last.partition})"
        table.add_row(
            escape(e.key),
            escape(", ".join(e.producers) or "(outside)"),
            escape(str(parts)),
            escape(made or "never"),
            _count(None if last is None else last.rows),
            _freshness(e.freshness),
        )
    rich_console().print(table)


def _freshness(f: Freshness) -> str:
    return "" if f.state == "none" else f"[{_STYLE.get(f.state, '')}]{f.state}[/]"


@assets_app.command("show")
def assets_show(
    key: Annotated[str, typer.Argument(help='The asset\'s key, e.g. "shop.orders".')],
    history: Annotated[
        int, typer.Option("--history", min=1, max=1000, help="Newest materializations shown.")
    ] = 10,
    json: JsonOpt = False,
    env: EnvOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """One asset: description, producers, consumers, upstream and downstream assets, the
    pipelines it triggers, the newest materialization per partition and the newest ones of
    all, with their metadata."""
    with user_errors(), workspace(project) as door:
        view = door.assets.asset(key, history=history)
    if json:
        from legato.cli.render import print_json

        print_json(view)
        return
    e = view.entry
    say = out.print
    say(f"[bold]{escape(e.key)}[/]" + (f"  {escape(e.description)}" if e.description else ""))
    for label, value in (
        ("owner", e.owner or ""),
        ("tags", ", ".join(e.tags)),
        ("producers", ", ".join(e.producers) or "(outside: no task produces it)"),
        ("consumers", ", ".join(e.consumers)),
        ("upstream", ", ".join(view.upstream)),
        ("downstream", ", ".join(view.downstream)),
        ("triggers", ", ".join(view.triggers)),
        ("partitions", (e.partitions or {}).get("kind", "")),
        ("materialized", _times(view.counts.materializations, view.counts.partitions)),
    ):  # fmt: skip
        if value:
            say(f"  {label:<13}{escape(str(value))}")
    if e.freshness_seconds is not None:
        f = e.freshness
        said = f" ({escape(f.why)})" if f.why else ""
        say(
            f"  {'freshness':<13}{_freshness(f)}{said}, "
            f"within {format_duration(timedelta(seconds=e.freshness_seconds))}"
        )
    if not view.history:
        return
    from rich.table import Table

    table = Table("at", "partition", "run", "task", "rows", "bytes", "columns", box=None)
    for m in view.history:
        meta = m.metadata
        columns = ", ".join(f"{c['name']}:{c['type']}" for c in meta.get("columns", []))
        table.add_row(
            _when(m.at),
            escape(m.partition or ""),
            escape(m.run_id),
            escape(m.task_key),
            _count(m.rows),
            _count(meta.get("bytes")),
            escape(columns if len(columns) <= 60 else columns[:59] + "…"),
        )
    rich_console().print(table)
    latest = view.history[0].metadata
    if latest.get("values"):
        say("  added by the task: " + escape(", ".join(
            f"{k}={v!r}" for k, v in latest["values"].items())))  # fmt: skip
