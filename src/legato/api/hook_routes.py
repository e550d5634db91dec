"""The webhook trigger endpoint: ``POST /api/v1/hooks/{pipeline}/{trigger}`` starts a run.

The caller proves itself with the trigger's secret token (``X-Legato-Token``, or
``Authorization: Bearer <token>``); the JSON object in the body gives the run's params. An
``Idempotency-Key`` header makes a retried call return the run it made the first time.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from legato.api.http_errors import ERRORS, error, storable_body, storable_url
from legato.api.schemas import ErrorOut, HookOut
from legato.services.door import Door
from legato.services.service_errors import ServiceError, status_of


def _token(request: Request) -> str:
    # The webhook's own header wins over Authorization, which may carry a proxy's credential.
    own = request.headers.get("x-legato-token")
    if own:
        return own
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return ""


def router(ctx: Door) -> APIRouter:
    """The webhook route over ``ctx``."""
    r = APIRouter(tags=["triggers"])

    def fire(pipeline: str, trigger: str, token: str, raw: bytes, key: str) -> JSONResponse:
        try:
            run, new = ctx.automation.fire_webhook(pipeline, trigger, token, raw, key)
        except ServiceError as exc:
            return error(status_of(exc), str(exc), exc.field)
        if new:
            ctx.on_run(run)
        body = HookOut(run_id=run.id, created=new, state=str(run.state))
        return JSONResponse(body.model_dump(), status_code=201 if new else 200)

    @r.post(
        "/hooks/{pipeline}/{trigger}",
        status_code=201,
        response_model=HookOut,
        responses={
            200: {"model": HookOut, "description": "the run this Idempotency-Key made before"},
            400: {
                "model": ErrorOut,
                "description": "the body is not a JSON object, or the Idempotency-Key is unusable",
            },
            401: {"model": ErrorOut, "description": "missing or wrong token"},
            413: {"model": ErrorOut, "description": ERRORS[413]["description"]},
            404: {"model": ErrorOut, "description": "no such webhook trigger"},
            409: {"model": ErrorOut, "description": "the trigger is paused"},
            422: {"model": ErrorOut, "description": "params the pipeline refuses"},
        },
        summary="Fire a webhook trigger",
    )
    async def hook(pipeline: str, trigger: str, request: Request) -> JSONResponse:
        """Start a run of ``pipeline`` with the JSON body as its params."""
        storable_url(request)
        token = _token(request)
        # The store is reached synchronously: off the event loop, so other requests go on.
        # The token is checked before the body is read: a caller without it gets its 401
        # however large a body it sends, and the server holds none of it.
        try:
            await run_in_threadpool(ctx.automation.check_webhook, pipeline, trigger, token)
        except ServiceError as exc:
            return error(status_of(exc), str(exc), exc.field)
        raw = await request.body()  # at most [limits] request_bytes: the server's check
        storable_body(raw)
        key = request.headers.get("idempotency-key") or uuid.uuid4().hex
        return await run_in_threadpool(fire, pipeline, trigger, token, raw, key)

    return r
