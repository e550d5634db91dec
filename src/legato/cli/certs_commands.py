"""``legato certs dev``: a local CA and a server certificate signed by it, to try HTTPS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from legato.cli.console import escape

certs_app: typer.Typer = typer.Typer(
    help="Certificates for serving HTTPS (a local CA to try it).", no_args_is_help=True
)

# After certs_app, as db_commands does: legato.cli.main imports certs_app from here.
from legato.cli.main import ProjectOpt, out, user_errors  # noqa: E402


@certs_app.command("dev")
def dev(
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to write them.", show_default="PROJECT/.legato/certs"),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="A further name or address the certificate is for."),
    ] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Make a local CA and a certificate for localhost, 127.0.0.1, ::1 (and each --host)
    signed by it: serve with the certificate, trust the CA where you connect from."""
    from datetime import UTC, datetime

    from legato.security.tls import make_dev_certs

    with user_errors():
        root = project.resolve()
        where = (folder or root / ".legato" / "certs").resolve()
        made = make_dev_certs(where, datetime.now(UTC), tuple(host or ()))

    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    lines = [
        f"a development CA and a server certificate for {', '.join(made.names)} in {where}",
        "",
        "serve HTTPS with them: in legato.toml",
        "",
        "  [web]",
        f'  tls_cert = "{shown(made.server.cert)}"',
        f'  tls_key = "{shown(made.server.key)}"',
        "",
        f"or: legato up --tls-cert {made.server.cert} --tls-key {made.server.key}",
        "",
        "trust the CA where you connect from (it signs only what this command made):",
        f"  curl --cacert {made.ca_cert} https://localhost:8765/api/v1/health",
        f"  export SSL_CERT_FILE={made.ca_cert}   # Python (httpx, requests) and others",
        "  a browser: import it as an authority in its certificate settings",
        f"keep {made.ca_key} private: whoever holds it can make certificates this CA vouches for",
    ]
    for line in lines:
        out.print(escape(line), highlight=False)
