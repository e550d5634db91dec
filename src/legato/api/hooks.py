"""The webhook trigger endpoint: ``POST /hooks/{pipeline}/{trigger}`` starts a run.

The caller proves itself with the trigger's secret token (``Authorization: Bearer <token>``
or ``X-Legato-Token``); the JSON object in the body gives the run's params. An
``Idempotency-Key`` header makes a retried call return the run it made the first time.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from legato import __version__
from legato.services.errors import ServiceError

if TYPE_CHECKING:
    from legato.services.automation import Automation
    from legato.store.records import RunRecord


def _token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-legato-token", "")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(auto: Automation, on_run: Callable[[RunRecord], None]) -> FastAPI:
    """The webhook app over a workspace's automation; ``on_run`` hears of each new run."""
    app = FastAPI(title="Legato", version=__version__)
    auto.ensure_triggers()

    @app.get("/health")
    def health() -> dict[str, Any]:
        auto.store.ping()
        return {"status": "ok", "version": __version__}

    @app.post("/hooks/{pipeline}/{trigger}")
    async def hook(pipeline: str, trigger: str, request: Request) -> JSONResponse:
        pipe = auto.ws.project.pipelines.get(pipeline)
        trig = None
        if pipe is not None:
            trig = next(
                (t for t in pipe.automation.triggers if t.name == trigger and t.kind == "webhook"),
                None,
            )
        if pipe is None or trig is None:
            return _error(404, f"no webhook trigger {trigger!r} on pipeline {pipeline!r}")
        state = auto.store.trigger_states().get((pipeline, trigger))
        given = _token(request)
        if state is None or not state.token or not secrets.compare_digest(given, state.token):
            return _error(401, "missing or wrong token for this webhook")
        if state.paused:
            return _error(409, f"webhook {trigger!r} of pipeline {pipeline!r} is paused")
        raw = await request.body()
        try:
            params = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"the body is not JSON: {exc}")
        if not isinstance(params, dict):
            return _error(
                400, f"the body must be a JSON object of params, not {type(params).__name__}"
            )
        event = request.headers.get("idempotency-key") or uuid.uuid4().hex
        try:
            run, new = auto.fire(
                pipeline,
                run_key=f"trigger:{pipeline}:{trigger}:{event}",
                origin=f"trigger:{trigger}",
                params=params,
                trigger=trigger,
                event_keys=[event],
            )
        except ServiceError as exc:
            return _error(422, str(exc))
        if new:
            on_run(run)
        return JSONResponse(
            {"run_id": run.id, "created": new, "state": str(run.state)},
            status_code=201 if new else 200,
        )

    return app
