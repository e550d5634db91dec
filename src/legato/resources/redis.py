"""The ``redis`` kind: a redis-py client from a URL, checked with PING.

    [resources.cache]
    kind = "redis"
    url = "redis://127.0.0.1:6379/0"     # rediss:// for TLS; a password in ${secret:...}
"""

from __future__ import annotations

from typing import Any, ClassVar

from legato.domain.urls import redact_url as redact
from legato.resources.kind import ResourceError, ResourceKind


class RedisResource(ResourceKind):
    """A ``redis.Redis`` client (a connection pool: safe for the threads of a worker)."""

    kind: ClassVar[str] = "redis"
    settings_keys: ClassVar[frozenset[str]] = frozenset(
        {"url", "decode_responses", "socket_timeout", "connect_timeout"}
    )

    def validate(self) -> None:
        url = self.require("url")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ResourceError(
                f"resource {self.name!r} (redis): url must start with redis://, rediss:// or "
                f"unix://, got {redact(url)!r}"
            )
        self.option("decode_responses", bool, False)
        self.option("socket_timeout", (int, float), None)
        self.option("connect_timeout", (int, float), None)

    def open(self) -> Any:
        import redis

        return redis.Redis.from_url(
            self.settings["url"],
            decode_responses=self.option("decode_responses", bool, False),
            socket_timeout=self.option("socket_timeout", (int, float), 30.0),
            socket_connect_timeout=self.option("connect_timeout", (int, float), 5.0),
        )

    def check(self, client: Any) -> str:
        client.ping()
        return f"PING answered by {redact(self.settings['url'])}"

