"""The webhook trigger endpoint: ``POST /api/v1/hooks/{pipeline}/{trigger}`` starts a run.

The caller proves itself with the trigger's secret token (``X-Legato-Token``, or
``Authorization: Bearer <token>``); the JSON object in the body gives the run's params. An
``Idempotency-Key`` header makes a retried call return the run it made the first time.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable

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


#: Webhooks whose rate one process remembers at most (any name a caller sends counts).
MAX_BUCKETS = 10_000


class RateLimit:
    """At most ``per_minute`` calls of each webhook in this process, a token bucket per
    webhook: a burst of up to a minute's worth, then a steady rate. Calls with a wrong token
    count too, so guessing a token is as slow as calling."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: tuple[str, str]) -> float:
        """Take one call for ``key``: 0 when it may go on, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            self._buckets.pop(key, None)  # re-inserted last: the dict stays in age order
            if len(self._buckets) >= MAX_BUCKETS:  # names made up by callers: forget the oldest
                self._buckets.pop(next(iter(self._buckets)))
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def router(ctx: Door, per_minute: int = 600) -> APIRouter:
    """The webhook route over ``ctx``, answering each webhook ``per_minute`` times a minute."""
    r = APIRouter(tags=["triggers"])
    limit = RateLimit(per_minute)

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
            429: {"model": ErrorOut, "description": "too many calls of this webhook"},
            422: {"model": ErrorOut, "description": "params the pipeline refuses"},
        },
        summary="Fire a webhook trigger",
    )
    async def hook(pipeline: str, trigger: str, request: Request) -> JSONResponse:
        """Start a run of ``pipeline`` with the JSON body as its params."""
        storable_url(request)
        wait = limit.wait((pipeline, trigger))
        if wait > 0:
            answer = error(429, f"too many calls of webhook {trigger!r}: try again later", None)
            answer.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return answer
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
