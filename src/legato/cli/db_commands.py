"""``legato db``: the store's schema revision, and migrating it, as an explicit operator step.

``legato up`` and ``legato run`` migrate the store on first open. In production (PostgreSQL,
several schedulers, a web server) an operator migrates once, before starting the new version's
processes. These commands therefore read only legato.toml or a URL, never the project's
pipeline code: the new code may not even import until the schema is current.

Exit codes: 0 done / at head, 1 ``current`` found the store not at head, 2 a user error (bad
URL, unreachable database, unknown revision, missing legato.toml).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.console import escape

if TYPE_CHECKING:
    from legato.services.schema_service import Schema

db_app: typer.Typer = typer.Typer(
    help="The store's schema: show its revision, migrate it to this Legato's.",
    no_args_is_help=True,
)

# Imported after db_app on purpose: legato.cli.main imports db_app from here, so it must exist
# when this module is the one imported first (main then finds it half-initialised).
from legato.cli.main import ProjectOpt, fail, out, user_errors  # noqa: E402

DATABASE_URL_ENV = "LEGATO_DATABASE_URL"

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"Database URL (default: {DATABASE_URL_ENV}, else the project's [store] url).",
        show_default=False,
    ),
]


def store_url(project: Path, url: str | None) -> str:
    """The URL to work on: ``--url``, else the project's (LEGATO_DATABASE_URL over legato.toml).

    With no legato.toml in ``project``, LEGATO_DATABASE_URL alone is enough: an operator's
    deploy job may have only the environment variable, not a project folder.
    """
    if url:
        return url
    from legato.config import CONFIG_FILE, load_config

    if not (project / CONFIG_FILE).is_file():
        from_env = os.environ.get(DATABASE_URL_ENV)
        if from_env:
            return from_env
        raise fail(
            f"no {CONFIG_FILE} in {project.resolve()}: give --project DIR, --url URL "
            f"or set {DATABASE_URL_ENV}"
        )
    # load_config applies LEGATO_DATABASE_URL itself, and resolves a relative SQLite path
    # against the project folder as every other command does.
    return load_config(project).database_url


def _schema(target: str) -> Schema:
    from legato.services.actor import Actor
    from legato.services.schema_service import Schema

    return Schema(target, Actor.local_user())


@db_app.command()
def upgrade(
    revision: Annotated[
        str,
        typer.Option("--revision", "-r", help="Revision to migrate to."),
    ] = "head",
    url: UrlOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Migrate the store's schema to this Legato's (or to --revision); safe to run twice at once."""
    from legato.services.schema_service import shown_url

    with user_errors():
        target = store_url(project, url)
        done = _schema(target).upgrade(revision)
    where = escape(shown_url(target))
    if done.before == done.after:
        out.print(f"store {where}: already at {done.after}", highlight=False)
    else:
        before = done.before or "empty"
        out.print(f"store {where}: {before} -> {done.after}", highlight=False)


@db_app.command()
def current(
    url: UrlOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Print the store's schema revision and this Legato's; exit 1 unless they are the same."""
    from legato.services.schema_service import shown_url

    with user_errors():
        target = store_url(project, url)
        where = escape(shown_url(target))
        status = _schema(target).status()
        head, found = status.head, status.found
        if status.missing_file is not None:
            # Not opened: that would create an empty file where a typo pointed.
            out.print(
                f"store {where}: no database file yet, head is {head}; "
                "create it with `legato db upgrade`",
                highlight=False,
            )
            raise typer.Exit(1)
        if status.current:
            out.print(f"store {where}: at {found} (head)", highlight=False)
            return
        if found is None:
            state = f"no schema yet, head is {head}; run `legato db upgrade`"
        elif status.known:
            state = f"at {found}, head is {head}; run `legato db upgrade`"
        else:
            state = f"at {found}, unknown to this Legato (head {head}): a newer Legato migrated it"
        out.print(f"store {where}: {state}", highlight=False)
        raise typer.Exit(1)


@db_app.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Prune finished runs made longer ago than this "
                     "(e.g. 30d); default: [retention] runs."),
    ] = None,
    failed_older_than: Annotated[
        str | None,
        typer.Option("--failed-older-than", help="Failed runs: this long (default: three "
                     "times --older-than, or [retention] failed_runs)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Remove old finished runs with their task runs, events, logs and results (and the
    logs and results of runs kept, past [retention] logs and results).

    Kept whatever their age: unfinished runs, the newest run of each pipeline and of each
    partition, and a run an unfinished re-run reads."""
    from datetime import timedelta

    from legato.cli.main import workspace
    from legato.cli.render import print_json
    from legato.definitions.durations import parse_duration
    from legato.services.retention_service import Policy

    with user_errors(), workspace(project) as door:
        policy = None
        if older_than is not None or failed_older_than is not None:
            try:
                runs = parse_duration(older_than, field="--older-than")
                failed = parse_duration(failed_older_than, field="--failed-older-than")
            except ValueError as exc:
                raise fail(str(exc)) from None
            if runs is None:
                raise fail("--failed-older-than goes with --older-than")
            policy = Policy.of(
                timedelta(seconds=runs), None if failed is None else timedelta(seconds=failed)
            )
        report = door.retention.prune(policy, dry_run=dry_run)
    gone = report.removed
    if json_out:
        print_json({
            "dry_run": report.dry_run,
            "older_than_seconds": report.policy.runs.total_seconds(),
            "failed_older_than_seconds": report.policy.failed_runs.total_seconds(),
            "runs": gone.runs, "task_runs": gone.task_runs, "attempts": gone.attempts,
            "events": gone.events, "folders": report.folders,
            "oldest": report.oldest.isoformat() if report.oldest else None,
            "newest": report.newest.isoformat() if report.newest else None,
            "by_pipeline": report.by_pipeline,
            "logs_of_runs": report.logs_pruned, "results_of_runs": report.results_pruned,
            "trigger_events": report.trigger_events, "audit_entries": report.audit_entries,
        })
        return
    verb = "would remove" if report.dry_run else "removed"
    for what, n, window in (
        ("logs", report.logs_pruned, report.policy.logs),
        ("results", report.results_pruned, report.policy.results),
    ):
        if n:
            out.print(f"{verb} the {what} of {n} runs older than {window} (the runs stay)",
                      highlight=False)
    if report.trigger_events:
        after = " (and those of the runs above, once they are)" if report.dry_run else ""
        out.print(f"{verb} {report.trigger_events} trigger events of runs gone{after}",
                  highlight=False)
    if report.audit_entries:
        out.print(f"{verb} {report.audit_entries} audit trail rows older than "
                  f"{report.policy.audit}", highlight=False)
    if not gone.runs:
        if not (report.logs_pruned or report.results_pruned or report.trigger_events
                or report.audit_entries):
            out.print(f"nothing to prune: no finished run is older than {report.policy.runs} "
                      f"(failed: {report.policy.failed_runs}) and not kept", highlight=False)
        return
    span = ""
    if report.oldest and report.newest:
        span = f" (made {report.oldest:%Y-%m-%d %H:%M} to {report.newest:%Y-%m-%d %H:%M} UTC)"
    out.print(
        f"{verb} {gone.runs} runs{span}: {gone.task_runs} task runs, {gone.attempts} "
        f"attempts, {gone.events} events"
        + ("" if report.dry_run else f", {report.folders} log and result folders"),
        highlight=False,
    )
    for name, n in sorted(report.by_pipeline.items()):
        out.print(f"  {escape(name)}: {n}", highlight=False)
