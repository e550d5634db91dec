"""The API's interactive docs (Swagger UI) at ``/api/docs``, under a policy of its own.

Swagger UI's script and style sheet come from a CDN and the page starts it with one inline
script. The app's policy admits neither, so this page alone sends a policy that admits the
CDN's files and that one script, by its hash: still no inline script of any other content,
and the pages of the UI keep the strict policy. Without internet access the page stays empty;
the OpenAPI document itself is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_PATH = "/api/docs"
CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The Content-Security-Policy of the docs page ``html``: the CDN, and each of its inline
    scripts by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {CDN} {hashes}; style-src 'self' {CDN}; "
        "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def install_docs(app: FastAPI, openapi_url: str, title: str) -> None:
    """Serve the docs page at :data:`DOCS_PATH`."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title)
    html = bytes(page.body).decode()
    policy = docs_policy(html)

    @app.get(DOCS_PATH, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})
