"""``legato users`` and ``legato tokens``: who may sign in to the web UI and the API.

These act on the project's own store as the local user, who is trusted as an admin (the
store's file permissions, or the database's own credentials, are the boundary).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.console import escape
from legato.cli.main import ProjectOpt, app, fail, out, user_errors, workspace

if TYPE_CHECKING:
    from legato.domain.access import TokenRecord, UserRecord

users_app = typer.Typer(help="Users of the web UI and the API, and their roles.")
tokens_app = typer.Typer(help="API tokens (Authorization: Bearer ...).")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

RoleOpt = Annotated[
    str, typer.Option("--role", help="viewer, operator, admin, or a role of [roles].")
]
ScopeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        help="Limit to pipelines matching this name pattern or tag:T (repeat for more).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password on: pass --password-stdin")
    first: str = typer.prompt("password", hide_input=True)
    again: str = typer.prompt("again", hide_input=True)
    if first != again:
        raise fail("the two passwords differ")
    return first


def _when(t: object) -> str:
    return "-" if t is None else f"{t:%Y-%m-%d %H:%M}"


def _user_row(u: UserRecord) -> dict[str, object]:
    return {
        "name": u.name,
        "role": u.role,
        "source": u.source,
        "disabled": u.disabled,
        "scope": list(u.scope),
        "password": u.password_hash is not None,
        "created_at": u.created_at,
        "last_sign_in_at": u.last_sign_in_at,
    }


@users_app.command("add")
def users_add(
    name: str,
    role: RoleOpt = "viewer",
    scope: ScopeOpt = None,
    password_stdin: StdinOpt = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Sign in by one-time links only.")
    ] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Add a local user (the password is asked for, or read with --password-stdin)."""
    password = None if no_password else _password(password_stdin)
    with user_errors(), workspace(project) as door:
        user = door.accounts.add_user(name, role, password, tuple(scope or ()))
    out.print(f"added {escape(user.name)} ({escape(user.role)})", highlight=False)


@users_app.command("list")
def users_list(json: JsonOpt = False, project: ProjectOpt = Path(".")) -> None:
    """List users with their roles and last sign-in."""
    with user_errors(), workspace(project) as door:
        users = door.accounts.users()
    rows = [_user_row(u) for u in users]
    if json:
        from legato.cli.render import print_json

        print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "role", "source", "state", "scope", "last sign-in", box=None)
    for u in users:
        table.add_row(
            escape(u.name),
            escape(u.role),
            u.source,
            "disabled" if u.disabled else "active",
            escape(", ".join(u.scope) or "all pipelines"),
            _when(u.last_sign_in_at),
        )
    out.print(table if users else "no users yet (legato users add NAME --role ROLE)")


@users_app.command("disable")
def users_disable(name: str, project: ProjectOpt = Path(".")) -> None:
    """Stop a user signing in, and end its sessions now."""
    with user_errors(), workspace(project) as door:
        door.accounts.disable(name)
    out.print(f"disabled {escape(name)}; its sessions ended", highlight=False)


@users_app.command("enable")
def users_enable(name: str, project: ProjectOpt = Path(".")) -> None:
    """Let a disabled user sign in again."""
    with user_errors(), workspace(project) as door:
        door.accounts.enable(name)
    out.print(f"enabled {escape(name)}", highlight=False)


@users_app.command("set-role")
def users_set_role(
    name: str, role: Annotated[str, typer.Argument()], scope: ScopeOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Give a user another role (and with --scope, other pipelines)."""
    with user_errors(), workspace(project) as door:
        user = door.accounts.set_role(name, role, None if scope is None else tuple(scope))
    out.print(f"{escape(user.name)} is now {escape(user.role)}", highlight=False)


@users_app.command("reset-password")
def users_reset_password(
    name: str, password_stdin: StdinOpt = False, project: ProjectOpt = Path(".")
) -> None:
    """Set a user's password; its sessions end and a lockout is lifted."""
    password = _password(password_stdin)
    with user_errors(), workspace(project) as door:
        door.accounts.reset_password(name, password)
    out.print(f"password of {escape(name)} set; its sessions ended", highlight=False)


@users_app.command("link")
def users_link(
    name: str,
    url: Annotated[
        str | None, typer.Option("--url", help="The web UI's address (default: legato.toml's).")
    ] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Print a one-time sign-in link for a user (it works once, for 15 minutes)."""
    with user_errors(), workspace(project) as door:
        token = door.accounts.sign_in_link(name)
        s = door.project.settings()
        base = url or f"http://{s.web_host}:{s.web_port}"
    out.print(f"{base.rstrip('/')}/signin/link?token={token}", highlight=False, soft_wrap=True)


def _token_row(t: TokenRecord) -> dict[str, object]:
    return {
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "scope": list(t.scope),
        "created_by": t.created_by,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    }


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="What the token is for.")],
    role: RoleOpt = "viewer",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 90d or 12h (default: none).")
    ] = None,
    scope: ScopeOpt = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Make an API token and print it once (only its hash is kept)."""
    from legato.definitions.durations import parse_duration

    lifetime = None
    if expires is not None:
        try:
            lifetime = timedelta(seconds=parse_duration(expires, field="--expires") or 0)
        except ValueError as exc:
            raise fail(str(exc)) from None
    with user_errors(), workspace(project) as door:
        made = door.accounts.create_token(name, role, lifetime, tuple(scope or ()))
    until = "" if made.record.expires_at is None else f", until {_when(made.record.expires_at)}"
    sys.stderr.write(
        f"token {made.record.name} ({made.record.role}{until}); shown once, keep it secret:\n"
    )
    sys.stdout.write(made.token + "\n")


@tokens_app.command("list")
def tokens_list(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    json: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List API tokens: names, roles, expiry and when each was last used."""
    with user_errors(), workspace(project) as door:
        found = door.accounts.tokens(include_revoked=all_)
    if json:
        from legato.cli.render import print_json

        print_json([_token_row(t) for t in found])
        return
    from rich.table import Table

    table = Table("id", "name", "role", "created", "expires", "last used", "state", box=None)
    for t in found:
        table.add_row(
            t.id,
            escape(t.name),
            escape(t.role),
            _when(t.created_at),
            _when(t.expires_at),
            _when(t.last_used_at),
            "revoked" if t.revoked_at is not None else "live",
        )
    out.print(table if found else "no tokens (legato tokens create --name NAME --role ROLE)")


@tokens_app.command("revoke")
def tokens_revoke(name_or_id: str, project: ProjectOpt = Path(".")) -> None:
    """Revoke a token by name or id: it stops working at once."""
    with user_errors(), workspace(project) as door:
        door.accounts.revoke_token(name_or_id)
    out.print(f"revoked {escape(name_or_id)}", highlight=False)
