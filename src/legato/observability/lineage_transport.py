"""Where OpenLineage events go: a file of one JSON event per line, or an HTTP endpoint
(Marquez's ``/api/v1/lineage``, or any OpenLineage receiver).

The outbox keeps each event as JSON, so the transports send that text as it is (with httpx,
as the alert channels do) rather than rebuilding the client's objects to hand to its own
transports. A failure is ``DeliveryFailed``, retryable or not, as for alert channels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.observability.channels import DeliveryFailed, post_json

if TYPE_CHECKING:
    import httpx


def append_line(path: Path, event: Mapping[str, Any]) -> None:
    """Append ``event`` to ``path`` as one line of JSON (the folder is made if need be).

    One ``write`` of the whole line to a file opened for appending: lines from several
    processes sending at once do not interleave.
    """
    line = (json.dumps(event, separators=(",", ":"), sort_keys=True) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        raise DeliveryFailed(f"{path}: {exc.strerror or exc}", retryable=True) from None


@dataclass
class HttpEndpoint:
    """POSTs each event to ``url``/``endpoint`` with ``headers`` (secrets already revealed),
    over one connection kept open from the first send until ``close``."""

    url: str
    endpoint: str = "api/v1/lineage"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    _client: httpx.Client | None = None

    @property
    def address(self) -> str:
        """The full URL events are POSTed to."""
        return f"{self.url.rstrip('/')}/{self.endpoint.lstrip('/')}" if self.endpoint else self.url

    def send(self, event: Mapping[str, Any]) -> None:
        """POST one event; DeliveryFailed unless the answer is 2xx."""
        import httpx

        if self._client is None:  # one client per batch: making one costs ~10 ms (TLS setup)
            self._client = httpx.Client(timeout=self.timeout)
        body = json.dumps(event, separators=(",", ":")).encode()
        post_json(self.address, body, self.headers, self.timeout, self._client)

    def close(self) -> None:
        """Close the connection, if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None
