"""The OpenID Connect provider of the tests (the npm package oidc-provider under node, from
tests/security/oidc_idp), started on 127.0.0.1, and a browser's walk through its sign-in.

Without node or the provider's node_modules (``npm ci`` there, as scripts/test.sh does) the
tests that need it skip, or fail when CI=true.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

IDP_DIR = Path(__file__).parent / "oidc_idp"
CLIENT_ID = "legato-test"
CLIENT_SECRET = "a-client-secret-for-tests-only"


def unavailable(reason: str) -> None:
    """Skip the test for want of ``reason``; fail it on CI, where everything must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def oidc_provider(folder: Path, redirect_uri: str) -> Iterator[str]:
    """A running oidc-provider knowing one client (``CLIENT_ID``, ``CLIENT_SECRET``) that may
    redirect to ``redirect_uri``; yields its issuer URL. Its stderr goes to ``folder``."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed: the OpenID Connect provider of these tests needs it")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        unavailable(
            f"oidc-provider is not installed: run `npm ci` in {IDP_DIR} (scripts/test.sh does)"
        )
    log = folder / "stderr.log"
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URI": redirect_uri,
    }
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(node), "server.js"],
            cwd=IDP_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # waits for the provider to listen, or exit
        if not line.startswith("listening "):
            proc.wait(timeout=10)
            pytest.fail(f"oidc-provider did not start: {line!r} {log.read_text()[-2000:]}")
        yield line.split()[1]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the provider exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sign_in_at_provider(
    url: str, username: str, password: str, redirect_uri: str
) -> dict[str, str]:
    """What a browser does: go to ``url``, sign in, and come back to ``redirect_uri``.

    Returns the query the provider sent to Legato's callback.
    """
    with httpx.Client(timeout=10.0) as browser:
        response = browser.get(url)
        submitted = False
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_uri):
                    return dict(parse_qsl(urlsplit(location).query))
                response = browser.get(location)
            elif response.status_code == 200 and "<form" in response.text and not submitted:
                action = re.search(r'action="([^"]+)"', response.text)
                assert action is not None, response.text
                response = browser.post(
                    urljoin(str(response.url), html.unescape(action.group(1))),
                    data={"username": username, "password": password},
                )
                submitted = True
            else:
                raise AssertionError(f"provider answered {response.status_code}: {response.text}")
    raise AssertionError("the provider never sent the browser back to Legato")
