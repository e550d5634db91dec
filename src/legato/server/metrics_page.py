"""``GET /metrics``: this process's metrics in Prometheus' text format.

Like every route it needs a credential: Prometheus sends an API token whose role grants
``metrics.read`` (a viewer's does) as ``Authorization: Bearer ...`` (its scrape config's
``authorization`` block), and an anonymous scrape gets 401. ``metrics_app`` is the same
route alone, which ``legato scheduler --metrics-port`` serves.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from legato.observability.metrics import CONTENT_TYPE
from legato.server.auth import METRICS_PATH, SignInMiddleware
from legato.server.headers import SecurityHeaders
from legato.server.hosts import HostCheck
from legato.services.actor import Actor
from legato.services.door import Door
from legato.services.service_errors import ServiceError, status_of

__all__ = ["METRICS_PATH", "install_metrics", "metrics_app"]


def install_metrics(app: FastAPI, served: Door) -> None:
    """Add ``GET /metrics`` to ``app``; ``served`` acts for whoever sent each request."""

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics() -> Response:
        try:
            # The store's figures are read off the event loop, as every store read is.
            body = await run_in_threadpool(served.monitoring.exposition)
        except ServiceError as exc:
            return JSONResponse({"error": str(exc), "field": None}, status_of(exc))
        return Response(body, media_type=CONTENT_TYPE)


def metrics_app(door: Door, *, allowed_hosts: Iterable[str]) -> FastAPI:
    """An app serving ``/metrics`` alone, behind the same sign-in and Host checks."""
    served = door.as_actor(Actor.per_request())
    app = FastAPI(title="Legato metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SignInMiddleware, signin=served.signin)
    app.add_middleware(HostCheck, allowed=allowed_hosts, public_url=None)
    app.add_middleware(SecurityHeaders)
    install_metrics(app, served)
    return app
