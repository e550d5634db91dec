"""The HTTP application: the REST API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``,
docs at ``/api/docs``) and the web UI at ``/``, over one workspace's services.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from legato import __version__
from legato.api import routes
from legato.api.routes import API_PREFIX
from legato.server.auth import SignInMiddleware
from legato.server.limits import BodyLimit
from legato.services.actor import Actor
from legato.services.door import Door

__all__ = ["API_PREFIX", "create_app"]


def create_app(door: Door, *, web: bool = True) -> FastAPI:
    """The app over ``door``'s workspace (``on_run`` hears of every run the API queues).

    ``door``'s own actor prepares the app (loads the code, records the triggers); requests
    act for whoever sent them, as the sign-in middleware proves it, and for nobody else.
    """
    door.project.pipelines()  # load the code once, before requests arrive on several threads
    door.automation.ensure_triggers()
    served = door.as_actor(Actor.per_request())
    app = FastAPI(
        title="Legato",
        version=__version__,
        description="Run, watch and operate Legato pipelines.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.add_middleware(SignInMiddleware, signin=served.signin)
    # Outermost: a body is bounded before anything (the sign-in check included) reads it.
    app.add_middleware(BodyLimit, limit=door.project.settings().request_bytes)
    routes.install(app, served)
    if web:
        from legato.web.pages import mount

        mount(app, served, door.project.settings())
    else:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/api/docs")

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
