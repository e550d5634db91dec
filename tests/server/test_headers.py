"""Security headers on every answer of the real app, and the API docs page's own policy."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from legato.server.app import create_app
from legato.server.docs_page import docs_policy
from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, bearer, door, make_project

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    with Workspace(make_project(tmp_path / "proj", ONE_TASK)) as ws:
        app = create_app(door(ws), allowed_hosts=["testserver"])
        c = TestClient(app, headers=bearer(ws))
        answers = [
            c.get("/"),
            c.get("/runs"),
            c.get("/static/legato.js"),
            c.get("/api/v1/health"),
            c.get("/api/v1/runs/nope"),  # 404
            c.post("/api/v1/pipelines/etl/runs", content=b"{", headers={"content-type": "x"}),
            c.get("/", headers={"Host": "elsewhere"}),  # refused by the Host check
            c.post("/api/v1/pipelines/etl/runs", headers={"Origin": "http://x.example"}),
        ]
        for r in answers:
            for name, value in EXPECTED.items():
                assert r.headers[name] == value, (r.request.url, name)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            # Plain HTTP: no HSTS (a browser would ignore it, and it must not stick to http).
            assert "strict-transport-security" not in r.headers
        tls = TestClient(app, base_url="https://testserver", headers=bearer(ws))
        over_tls = tls.get("/api/v1/health")
        assert over_tls.headers["strict-transport-security"] == "max-age=31536000"


def test_the_docs_page_admits_its_own_inline_script_only(tmp_path: Path) -> None:
    with Workspace(make_project(tmp_path / "proj", ONE_TASK)) as ws:
        app = create_app(door(ws), allowed_hosts=["testserver"])
        r = TestClient(app, headers=bearer(ws)).get("/api/docs")
        assert r.status_code == 200 and "swagger" in r.text.lower()
        csp = r.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        scripts = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
        assert len(scripts) == 1
        assert csp == docs_policy(r.text)
        # A different inline script (an injected one) would not match the page's hash.
        assert docs_policy(r.text.replace("SwaggerUIBundle({", "alert(1);SwaggerUIBundle({")) != csp
        assert r.headers["x-frame-options"] == "DENY"
