"""What the server's middlewares share: answering a request themselves, and knowing whether
the app already began its answer."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Message, Send


class WatchedSend:
    """``send`` that remembers whether the answer's start went out (then no other answer can)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole answer: ``status``, ``body`` of ``content_type``, ``extra`` headers."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str) -> bytes:
    """The API's error shape (``{"error": ..., "field": null}``) as JSON bytes."""
    return json.dumps({"error": message, "field": None}).encode()
