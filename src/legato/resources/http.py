"""The ``http`` kind: an httpx client with a base URL, headers, auth, timeouts, retries and a
rate limit.

    [resources.rates_api]
    kind = "http"
    base_url = "https://api.example.com/v2/"
    auth = { token = "${secret:rates_token}" }
    retries = 5
    rate_limit = 10

Retries and the rate limit live in the client's transport
(``legato.resources.http_transport``), so every request through the client gets them, those
of connectors included.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from legato.resources.kind import ResourceError, ResourceKind

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpResource"]

_AUTH_KEYS = frozenset({"user", "password", "token", "scheme"})


class HttpResource(ResourceKind):
    """Settings (all optional):

    ``base_url``; ``headers`` and ``params`` (sent with every request); ``auth``:
    ``{user, password}`` for basic auth or ``{token}`` for ``Authorization: Bearer <token>``
    (``scheme`` changes the word); ``timeout`` in seconds (30); ``retries`` (3), ``backoff``
    (0.5 s, doubled per try) and ``max_retry_wait`` (60 s); ``rate_limit`` in requests per
    second for the worker process; ``verify`` (true, false, or a CA bundle file);
    ``follow_redirects`` (true); ``check_path`` requested by ``legato resources check`` ("/").
    """

    kind = "http"
    settings_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "base_url", "headers", "params", "auth", "timeout", "retries", "backoff",
            "max_retry_wait", "rate_limit", "verify", "follow_redirects", "check_path",
        }
    )  # fmt: skip

    def validate(self) -> None:
        self.option("base_url", str, None)
        self.option("check_path", str, None)
        self.option("follow_redirects", bool, None)
        self.option("verify", (bool, str), None)
        for key in ("headers", "params"):
            for name, value in self.option(key, dict, {}).items():
                if not isinstance(value, str | int | float) or isinstance(value, bool):
                    self._bad(f"{key}.{name} must be a string or a number, got {value!r}")
        for key in ("timeout", "backoff", "max_retry_wait", "rate_limit"):
            value = self.option(key, (int, float), None)
            if value is not None and (value < 0 or (value == 0 and key != "backoff")):
                self._bad(f"{key!r} must be positive, got {value!r}")
        retries = self.option("retries", int, None)
        if retries is not None and retries < 0:
            self._bad(f"'retries' must be 0 or more, got {retries!r}")
        auth = self.option("auth", dict, None)
        if auth is not None:
            unknown = sorted(set(auth) - _AUTH_KEYS)
            if unknown:
                self._bad(
                    f"auth: unknown key {unknown[0]!r} (known: password, scheme, token, user)"
                )
            if ("token" in auth) == ("user" in auth):
                self._bad("auth needs either user (and password) or token")
            for key, value in auth.items():
                if not isinstance(value, str):
                    self._bad(f"auth.{key} must be a string")

    def _bad(self, why: str) -> NoReturn:
        raise ResourceError(f"resource {self.name!r} (http): {why}")

    def open(self) -> httpx.Client:
        import httpx

        from legato.resources.http_transport import RateLimiter, RetryTransport

        settings = self.settings
        rate = settings.get("rate_limit")
        transport = RetryTransport(
            httpx.HTTPTransport(verify=self._verify()),
            retries=settings.get("retries", 3),
            backoff=float(settings.get("backoff", 0.5)),
            max_wait=float(settings.get("max_retry_wait", 60.0)),
            limiter=RateLimiter(float(rate)) if rate else None,
        )
        headers = {k: str(v) for k, v in settings.get("headers", {}).items()}
        auth: httpx.Auth | None = None
        given = settings.get("auth")
        if given and "token" in given:
            headers["Authorization"] = f"{given.get('scheme', 'Bearer')} {given['token']}"
        elif given:
            auth = httpx.BasicAuth(given["user"], given.get("password", ""))
        return httpx.Client(
            base_url=settings.get("base_url", ""),
            headers=headers,
            params={k: str(v) for k, v in settings.get("params", {}).items()},
            auth=auth,
            timeout=float(settings.get("timeout", 30.0)),
            follow_redirects=settings.get("follow_redirects", True),
            transport=transport,
        )

    def _verify(self) -> Any:
        verify = self.settings.get("verify", True)
        if isinstance(verify, str):
            import ssl

            return ssl.create_default_context(cafile=self.project_path(verify))
        return verify

    def check(self, client: httpx.Client) -> str:
        path = self.settings.get("check_path", "/")
        if not client.base_url.host and "://" not in path:
            return "opened (no base_url, and check_path is not a full URL: nothing to request)"
        started = time.monotonic()
        response = client.get(path)
        took = (time.monotonic() - started) * 1000
        said = f"GET {response.url} answered {response.status_code} {response.reason_phrase}"
        if response.status_code >= 500:
            raise ResourceError(f"resource {self.name!r} (http): {said}")
        return f"{said} in {took:.0f} ms"
