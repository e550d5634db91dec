"""Signing in with real Chromium against `legato up`: a page sends the browser to the sign-in
form and back; a change without the session's CSRF token is refused, and so is a form posted
from another site; signing out ends the session."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import VIEWPORT, watch, web_url
from tests.helpers import ONE_TASK, Daemons, cli, http_client, make_project

pytestmark = pytest.mark.slow

PASSWORD = "a long and secret phrase"




def evil_site(target: str) -> tuple[ThreadingHTTPServer, str]:
    """Another site (another host name and port) whose page posts a form to ``target`` as
    soon as it loads, as a cross-site request forgery would."""
    page = f"""<!doctype html><form id=f method=post action="{target}">
<input name=params value="{{}}"></form><script>document.getElementById('f').submit()</script>
""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}/"


def test_sign_in_csrf_and_sign_out_in_chromium(
    tmp_path: Path, daemons: Daemons, browser: Browser
) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1)
    added = cli(
        "users", "add", "ann", "--role", "operator", "--password-stdin",
        project=project, input=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    daemon = daemons.up(project)
    url = web_url(daemon)
    daemon.wait_output("sign in: ")
    assert "sign in: " + url + "/signin/link?token=" in daemon.output()
    api = http_client(url, project)

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems = watch(page)
    try:
        page.goto(url + "/runs")
        assert page.url.startswith(url + "/signin?next=")
        page.fill("input[name=name]", "ann")
        page.fill("input[name=password]", "not it")
        page.click("button[type=submit]")
        expect(page.locator(".error-text")).to_contain_text("wrong name or password")
        page.fill("input[name=name]", "ann")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(url + "/runs")
        expect(page.locator("form.me")).to_contain_text("ann")
        cookie = next(c for c in context.cookies() if c["name"] == "legato_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        # A change from the page's own script without the CSRF token is refused ...
        status = page.evaluate(
            """async () => (await fetch('/api/v1/pipelines/etl/runs', {method: 'POST',
                 headers: {'Content-Type': 'application/json'}, body: '{}'})).status"""
        )
        assert status == 403
        # ... and with it, it is let through (what the UI's buttons do).
        status = page.evaluate(
            """async () => (await fetch('/api/v1/pipelines/etl/runs', {method: 'POST',
                 headers: {'Content-Type': 'application/json', 'X-CSRF-Token':
                 document.querySelector('meta[name=csrf-token]').content}, body: '{}'})).status"""
        )
        assert status == 201
        assert len(api.get("/api/v1/runs").json()["runs"]) == 1

        # Another site's page posting a form here, in the same signed-in browser: refused.
        server, evil = evil_site(url + "/api/v1/pipelines/etl/runs")
        try:
            other = context.new_page()
            with other.expect_response(lambda r: "/api/v1/pipelines/etl/runs" in r.url) as got:
                other.goto(evil)
            assert got.value.status in (401, 403), got.value.status
            other.close()
        finally:
            server.shutdown()
        assert len(api.get("/api/v1/runs").json()["runs"]) == 1  # nothing was launched

        page.click("form.me button[type=submit]")
        page.wait_for_url(url + "/signin")
        page.goto(url + "/runs")
        assert page.url.startswith(url + "/signin?next=")
        assert not problems, problems
    finally:
        context.close()
    rows = [
        (r["action"], r["outcome"])
        for r in api.get("/api/v1/audit", params={"actor": "user:ann"}).json()["entries"]
    ]
    assert ("auth.signin", "refused") in rows and ("auth.signout", "ok") in rows
