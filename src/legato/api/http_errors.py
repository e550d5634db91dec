"""How the service layer's errors become HTTP answers: 404, 409 and 422 with a reason."""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from legato.services.service_errors import STATUS, ServiceError, status_of

#: Declared on every route that can answer so, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such pipeline, run, task or backfill"},
    409: {"description": "the action does not fit the current state"},
    413: {"description": "the request body is larger than legato.toml's [limits] request_bytes"},
    422: {"description": "invalid input; `field` names it"},
}


#: Characters of an error's message and of its field at most: both may quote what was sent.
MAX_MESSAGE = 1000
MAX_FIELD = 200


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text) - limit + 40} more characters)"


def error(status: int, message: str, field: str | None = None) -> JSONResponse:
    """The one shape of every error answer; a message or field quoting a long value that was
    sent is cut short, so an error never answers with the whole of a rejected value."""
    cut_field = None if field is None else _cut(field, MAX_FIELD)
    return JSONResponse(
        {"error": _cut(message, MAX_MESSAGE), "field": cut_field}, status_code=status
    )


def _unstorable(value: Any, where: str) -> tuple[str, str] | None:
    """(where, why) for the first text in ``value`` that no store can keep, else None.

    PostgreSQL refuses NUL characters in text, and neither store can encode a lone surrogate
    (which JSON's ``\\ud800`` escapes can make). Dict keys count as text too.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return where, "must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where, "must be valid Unicode (a lone surrogate is not)"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            name = str(k).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "")
            found = _unstorable(k, f"{where}.{name}" if where else name) or _unstorable(
                v, f"{where}.{name}" if where else name
            )
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _unstorable(v, f"{where}.{i}" if where else str(i))
            if found:
                return found
    return None


def _refuse(found: tuple[str, str] | None) -> None:
    if found is not None:
        raise ServiceError(f"{found[0] or 'body'}: {found[1]}", found[0] or None)


def storable_url(request: Request) -> None:
    """Raise ServiceError (422) for path or query text with NUL characters or lone
    surrogates, which would otherwise fail in the store (a 500)."""
    found = _unstorable(dict(request.path_params), "")
    for k, v in request.query_params.multi_items():
        found = found or _unstorable({k: v}, "")
    _refuse(found)


def storable_body(raw: bytes) -> None:
    """Raise ServiceError (422) for text in a JSON body that no store can hold."""
    # Not JSON, or nested beyond reason: the route itself says so.
    with suppress(ValueError, RecursionError):
        _refuse(_unstorable(json.loads(raw), "") if raw.strip() else None)


async def storable_input(request: Request) -> None:
    """A dependency of every API route but the webhook's (which checks its token first):
    422 for path, query or JSON body text that no store can hold."""
    storable_url(request)
    if request.method in ("POST", "PUT", "PATCH"):
        storable_body(await request.body())  # kept by the request: the route reads it again


def install(app: FastAPI) -> None:
    """Map service errors to status codes on ``app``."""

    async def known(request: Request, exc: Exception) -> JSONResponse:
        return error(status_of(exc), str(exc), getattr(exc, "field", None))

    for kind, _ in STATUS:
        app.add_exception_handler(kind, known)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            why = first.get("ctx", {}).get("error", "")
            return error(422, f"the body is not valid JSON: {why}".rstrip(": "))
        where = tuple(first.get("loc", ()))
        if where[:1] == ("query",):
            # A repeated query parameter (?state=a&state=b) is one field, not a list of them.
            where = tuple(p for p in where if not isinstance(p, int))
        loc = [str(p) for p in where if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        message = first.get("msg", "invalid request")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return error(422, f"{field or 'request'}: {message}{more}", field)

    app.add_exception_handler(StarletteHTTPException, framework_error)


#: What FastAPI says when it cannot read a body at all.
_UNPARSED = "There was an error parsing the body"


#: The methods a route of this app may take.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _methods_of(request: Request) -> list[str]:
    """Every method some route takes at this request's path."""
    found = []
    for method in _METHODS:
        # A fresh scope per look: matching may write into the scope it is given.
        scope = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": [],
        }
        if any(r.matches(dict(scope))[0] == Match.FULL for r in request.app.router.routes):
            found.append(method)
    return found


async def framework_error(request: Request, exc: Exception) -> Response:
    """The framework's own answers (no such path, a method the path does not take, a body
    that is not even text) in the one error shape.

    The router names only the methods of the first route it found at a path in ``Allow``:
    here it lists them all. OPTIONS is answered with them (204), not refused.
    """
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = _methods_of(request)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": ", ".join([*methods, "OPTIONS"])})
        headers["Allow"] = ", ".join(methods)
    status, message = exc.status_code, str(exc.detail)
    if (status, message) == (400, _UNPARSED):
        # FastAPI's words when a JSON body is not even UTF-8: the same 422 as other bad JSON.
        status, message = 422, "the body is not valid JSON: it is not UTF-8 text"
    return JSONResponse({"error": message, "field": None}, status, headers=headers)
