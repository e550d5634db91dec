"""The HTTP application: the REST API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``,
docs at ``/api/docs``), the web UI at ``/`` and Prometheus metrics at ``/metrics``, over one
workspace's services.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from legato import __version__
from legato.api import routes
from legato.api.routes import API_PREFIX
from legato.server.auth import SignInMiddleware
from legato.server.docs_page import DOCS_PATH, install_docs
from legato.server.failures import GenericErrors
from legato.server.headers import SecurityHeaders
from legato.server.hosts import HostCheck, served_hosts
from legato.server.limits import BodyLimit
from legato.server.metrics_page import install_metrics
from legato.services.actor import Actor
from legato.services.door import Door

__all__ = ["API_PREFIX", "create_app"]


def create_app(
    door: Door, *, web: bool = True, allowed_hosts: Iterable[str] | None = None
) -> FastAPI:
    """The app over ``door``'s workspace (``on_run`` hears of every run the API queues).

    ``door``'s own actor prepares the app (loads the code, records the triggers); requests
    act for whoever sent them, as the sign-in middleware proves it, and for nobody else.

    ``allowed_hosts``: the ``host[:port]`` names it answers to (server/hosts.py); by default
    those of the project's ``[web] public_url``, or of its configured address and port.
    """
    settings = door.project.settings()
    if allowed_hosts is None:
        allowed_hosts = served_hosts(settings.public_url, settings.web_host, settings.web_port)
    door.project.pipelines()  # load the code once, before requests arrive on several threads
    door.automation.ensure_triggers()
    served = door.as_actor(Actor.per_request())
    app = FastAPI(
        title="Legato",
        version=__version__,
        description="Run, watch and operate Legato pipelines.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by install_docs, under its own policy
        redoc_url=None,
    )
    app.add_middleware(GenericErrors)  # inside the others: its 500 gets the headers too
    app.add_middleware(SignInMiddleware, signin=served.signin)
    # Outside every route and error handler, the sign-in check included: a body is bounded
    # wherever it is read.
    app.add_middleware(BodyLimit, limit=settings.request_bytes)
    app.add_middleware(HostCheck, allowed=allowed_hosts, public_url=settings.public_url)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, refusals included
    install_docs(app, f"{API_PREFIX}/openapi.json", "Legato")
    routes.install(app, served, settings)
    install_metrics(app, served)
    if web:
        from legato.web.pages import mount

        mount(app, served, settings)
    else:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse(DOCS_PATH)

    return app


#: How long the link printed when a server starts works (once).
START_LINK_HOURS = 24.0


def sign_in_url(door: Door, base_url: str) -> str:
    """A one-time link that signs the local user in as an admin (made one if needed): what
    ``legato up`` and ``legato web`` print, as Jupyter prints its token."""
    local = door.as_actor(Actor.local_user())
    name = local.actor.name
    local.accounts.ensure_admin(name)
    token = local.accounts.sign_in_link(name, minutes=START_LINK_HOURS * 60)
    return f"{base_url}/signin/link?token={token}"
