"""Activation over HTTP: rows sent to an endpoint as JSON batches, each with an
``Idempotency-Key`` header the receiver can deduplicate on.

A batch's key is ``<run id>/<task>[/<map index>]/<key>/<batch>`` (see
``legato.connectors.idempotency``), ``key`` being the push's (default: the URL): never the
attempt, so when an attempt fails half-way and the task is retried, the batches it sends
again carry the keys they had, and a receiver that honours the header applies each batch
once. The client's own retries (an ``http`` resource retries 429 and 5xx) resend a request
with its header unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from legato.connectors.idempotency import idempotency_key
from legato.connectors.rows import dumps, row_batches

if TYPE_CHECKING:
    import httpx

    from legato.definitions.context import Context

__all__ = ["Pushed", "push"]


@dataclass(frozen=True)
class Pushed:
    """What ``push`` sent: rows and batches, all answered with 2xx."""

    rows: int
    batches: int


def push(
    client: httpx.Client,
    url: str,
    rows: Any,
    *,
    batch_size: int = 500,
    ctx: Context | None = None,
    key: str | None = None,
    envelope: str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    key_header: str = "Idempotency-Key",
) -> Pushed:
    """Send ``rows`` (an iterable of dicts, or a pandas, polars or pyarrow table) to ``url``
    in JSON batches of ``batch_size``, one request each, in order; return the counts.

    The body is the batch as a JSON list, or ``{envelope: [...]}``. Each request carries
    ``key_header`` (see the module docstring; a task pushing twice to one URL names each
    push with ``key``; with neither ``ctx`` nor ``key`` the keys are new on every call).
    A batch answered other than 2xx after the client's retries raises
    ``httpx.HTTPStatusError`` and the batches after it are not sent.
    """
    name = key if key is not None else url
    if ctx is None and key is None:
        name = f"{url}/{uuid.uuid4().hex}"
    sent = batches = 0
    base = {"Content-Type": "application/json", **dict(headers or {})}
    for number, batch in enumerate(row_batches(rows, batch_size)):
        body = dumps(batch if envelope is None else {envelope: batch})
        response = client.request(
            method,
            url,
            content=body.encode("utf-8"),
            headers={**base, key_header: _header_value(idempotency_key(ctx, name, number))},
        )
        response.raise_for_status()
        sent += len(batch)
        batches += 1
    return Pushed(rows=sent, batches=batches)


def _header_value(key: str) -> str:
    # A header is ASCII: a URL or key= with other characters goes percent-encoded.
    return key if key.isascii() else quote(key, safe="/:")
