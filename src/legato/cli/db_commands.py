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
