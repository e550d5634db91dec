"""Trigger listeners against the real NATS server: what a user reads when a stream is missing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from legato.scheduler import listeners
from legato.scheduler.listeners import StreamListener, make_listener
from legato.services.workspace import Workspace
from tests.helpers import door, make_project, wait_for

CODE = """
from legato import pipeline, task
from legato.triggers import nats_stream

@task
def take(n: int) -> int:
    return n

@pipeline(triggers=[nats_stream("SUBJECT", url="URL")])
def from_nats(n: int):
    take(n)
"""


def run_with_nats(url: str, work: Any) -> Any:
    import nats

    async def main() -> Any:
        nc = await nats.connect(url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


@pytest.fixture
def subject(nats_url: str) -> Iterator[str]:
    """A unique subject; a stream made for it is deleted after the test."""
    name = f"legato.test.{uuid.uuid4().hex}"
    yield name

    async def cleanup(js: Any) -> None:
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name.replace(".", "_"))

    run_with_nats(nats_url, cleanup)


def test_a_missing_stream_is_said_once_in_one_line_then_found_when_created(
    tmp_path: Path,
    nats_url: str,
    subject: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listeners, "STREAM_LOOK_SECONDS", 0.1)
    caplog.set_level(logging.WARNING, logger="legato.triggers")
    code = CODE.replace("SUBJECT", subject).replace("URL", nats_url)
    root = make_project(tmp_path / "p", code)
    with Workspace(root) as ws:
        pipe = ws.project.pipelines["from_nats"]
        listener = make_listener(door(ws).automation, pipe, pipe.automation.triggers[0], print)
        assert isinstance(listener, StreamListener)
        looks = 0
        make_source = listener.source_factory

        def counted() -> Any:
            nonlocal looks
            looks += 1
            return make_source()

        listener.source_factory = counted
        listener.start()
        try:
            wait_for(lambda: looks >= 4, timeout=10, what="the listener to look four times")
            said = [r.getMessage() for r in caplog.records]
            assert len(said) == 1, said
            assert "\n" not in said[0]
            assert f"no JetStream stream holds NATS subject {subject!r}" in said[0]
            assert "pass create_stream=True to nats_stream()" in said[0]
            assert said[0].endswith("looking for it again every 0.1 s")

            async def create(js: Any) -> None:
                await js.add_stream(name=subject.replace(".", "_"), subjects=[subject])

            run_with_nats(nats_url, create)
            wait_for(
                lambda: any("listening again" in r.getMessage() for r in caplog.records),
                timeout=10,
                what="the listener to find the stream",
            )
            assert listener.error is None
        finally:
            listener.stop()
            listener.join(10)
