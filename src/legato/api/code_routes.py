"""Routes of the code the server runs: its version, its pipelines' code versions, the modules
that failed to load; and a stream that tells when that changes (a reload, an error)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from legato.api.http_errors import ERRORS
from legato.api.run_routes import SSE_HEADERS
from legato.api.streams import Pace, sse
from legato.services.door import Door
from legato.services.project import CodeState


class LoadErrorOut(BaseModel):
    """A module that failed to load."""

    module: str
    where: str  # file:line, "" when not known
    error: str
    message: str  # where and error in one line
    traceback: str


class CodeOut(BaseModel):
    """The code the server runs now."""

    key: str  # changes whenever anything below does
    digest: str
    loads: int  # reloads since the server started
    loaded_at: datetime | None
    pipelines: dict[str, str]  # pipeline -> code version
    errors: list[LoadErrorOut]

    @classmethod
    def of(cls, s: CodeState) -> CodeOut:
        return cls(
            key=s.key,
            digest=s.digest,
            loads=s.loads,
            loaded_at=s.loaded_at,
            pipelines=s.versions,
            errors=[
                LoadErrorOut(
                    module=e.module,
                    where=e.where,
                    error=e.error,
                    message=e.message,
                    traceback=e.traceback,
                )
                for e in s.errors
            ],
        )


_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}


async def _change(ctx: Door, seen: str | None, request: Request) -> AsyncIterator[str]:
    # The state is in memory (the daemon reloads the code): a look costs a few stats. One
    # change per stream, so no stream outlives its use: the client asks again with the key.
    pace = Pace()
    while True:
        state = await run_in_threadpool(ctx.project.code_state)
        if state.key != seen:
            yield sse(json.dumps(CodeOut.of(state).model_dump(mode="json")), event="code")
            return
        beat = await pace.wait(request)
        if beat is None:
            return
        if beat:
            yield beat


def router(ctx: Door) -> APIRouter:
    """The /code routes over ``ctx``."""
    r = APIRouter(prefix="/code", tags=["code"], responses=ERRORS)

    @r.get("", response_model=CodeOut, summary="The code served")
    def code() -> CodeOut:
        """The code's digest, how often it was reloaded, each pipeline's code version and
        the modules that failed to load (with file:line and traceback)."""
        return CodeOut.of(ctx.project.code_state())

    @r.get("/stream", responses=_SSE, summary="The next change of the code served")
    def code_stream(
        request: Request, seen: Annotated[str | None, Query(max_length=64)] = None
    ) -> StreamingResponse:
        """Server-sent events: one ``code`` event (the body of ``GET /code``) as soon as its
        ``key`` differs from ``seen`` (at once if it already does: a reload, a load error
        come or gone), then the stream ends; ask again with the new key."""
        ctx.project.code_state()  # not allowed to read it: the error answer, not a stream
        return StreamingResponse(
            _change(ctx, seen, request), media_type="text/event-stream", headers=SSE_HEADERS
        )

    return r
