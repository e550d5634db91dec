"""NatsJetStreamSource against the real NATS server (skipped if absent, failed if CI=true)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from legato.scheduler.sources import (
    Message,
    NatsJetStreamSource,
    SourceError,
    StreamNotFound,
    StreamSource,
)
from tests.helpers import wait_for

MakeSource = Callable[..., NatsJetStreamSource]


def run_with_nats(url: str, work: Callable[[Any], Any]) -> Any:
    """Run ``await work(jetstream_context)`` on a throwaway connection."""
    import nats

    async def main() -> Any:
        nc = await nats.connect(url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def publish(url: str, subject: str, *payloads: bytes) -> list[int]:
    """Publish and wait for JetStream to store each message; their stream sequences."""

    async def work(js: Any) -> list[int]:
        return [(await js.publish(subject, p)).seq for p in payloads]

    return run_with_nats(url, work)


@pytest.fixture
def names(nats_url: str) -> Iterator[tuple[str, str]]:
    """A unique (subject, stream name); the stream is deleted after the test if it exists."""
    token = uuid.uuid4().hex
    subject, stream = f"legato.test.{token}", f"LEGATO_TEST_{token}"
    yield subject, stream

    async def cleanup(js: Any) -> None:
        from nats.js.errors import NotFoundError

        for name in (stream, subject.replace(".", "_")):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)

    run_with_nats(nats_url, cleanup)


@pytest.fixture
def make_source(nats_url: str, names: tuple[str, str]) -> Iterator[MakeSource]:
    """``make_source(durable="d", **options)`` on the test's stream, closed after the test."""
    subject, stream = names
    made: list[NatsJetStreamSource] = []

    def make(durable: str = "d", **options: Any) -> NatsJetStreamSource:
        options.setdefault("stream", stream)
        options.setdefault("create_stream", True)
        source = NatsJetStreamSource(nats_url, subject, durable, **options)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def datas(messages: list[Message]) -> list[bytes]:
    return [m.data for m in messages]


def test_create_stream_fetch_and_ack(
    nats_url: str, names: tuple[str, str], make_source: MakeSource
):
    subject, stream = names
    source = make_source()
    assert isinstance(source, StreamSource)
    assert source.stream == stream
    seqs = publish(nats_url, subject, b"m0", b"m1", b"m2")

    got = source.fetch(3, 5.0)

    assert [m.id for m in got] == [f"{stream}:{seq}" for seq in seqs]
    assert datas(got) == [b"m0", b"m1", b"m2"]
    assert not any(m.redelivered for m in got)
    source.ack(got)
    source.ack(got)  # already acknowledged: ignored
    assert source.fetch(1, 0.2) == []


def test_stream_is_found_by_subject_or_named_after_it(
    nats_url: str, names: tuple[str, str], make_source: MakeSource
):
    subject, _ = names
    derived = subject.replace(".", "_")
    created = make_source(stream=None)
    assert created.stream == derived
    found = make_source(durable="other", stream=None, create_stream=False)
    assert found.stream == derived
    publish(nats_url, subject, b"x")
    assert [m.id for m in found.fetch(1, 5.0)] == [f"{derived}:1"]


def test_missing_stream_is_a_source_error(nats_url: str, names: tuple[str, str]):
    subject, stream = names
    with pytest.raises(StreamNotFound, match=f"no JetStream stream holds NATS subject '{subject}'"):
        NatsJetStreamSource(nats_url, subject, "d")
    with pytest.raises(StreamNotFound, match=f"JetStream stream '{stream}' .* does not exist"):
        NatsJetStreamSource(nats_url, subject, "d", stream=stream)
    assert issubclass(StreamNotFound, SourceError)


def test_unacked_messages_are_redelivered_after_ack_wait(
    nats_url: str, names: tuple[str, str], make_source: MakeSource
):
    subject, stream = names
    first = make_source(ack_wait=1.0)
    seqs = publish(nats_url, subject, b"m0", b"m1", b"m2")
    got = first.fetch(3, 5.0)
    first.ack(got[:1])
    first.close()  # "crashes" holding m1 and m2

    second = make_source(ack_wait=1.0)  # same durable
    again = second.fetch(2, 5.0)
    assert [m.id for m in again] == [f"{stream}:{seq}" for seq in seqs[1:]]
    assert all(m.redelivered for m in again)
    second.ack(again)
    assert second.fetch(3, 1.3) == []  # past ack_wait: acked ones stay acked


def test_micro_batch_waits_for_the_batch_or_the_deadline(
    nats_url: str, names: tuple[str, str], make_source: MakeSource
):
    subject, _ = names
    source = make_source()
    publish(nats_url, subject, b"a", b"b")
    started = time.monotonic()
    assert datas(source.fetch(10, 0.5)) == [b"a", b"b"]
    assert 0.45 <= time.monotonic() - started < 1.5

    publish(nats_url, subject, *[f"n{i}".encode() for i in range(6)])
    started = time.monotonic()
    batch = source.fetch(4, 5.0)
    assert datas(batch) == [b"n0", b"n1", b"n2", b"n3"]
    assert time.monotonic() - started < 1.0
    source.ack(batch)
    assert datas(source.fetch(4, 0.3)) == [b"n4", b"n5"]

    # Messages that arrive after the first one join the same batch.
    threading.Timer(0.3, publish, (nats_url, subject, b"late1", b"late2")).start()
    publish(nats_url, subject, b"early")
    started = time.monotonic()
    assert datas(source.fetch(3, 5.0)) == [b"early", b"late1", b"late2"]
    assert time.monotonic() - started < 2.0

    started = time.monotonic()
    assert source.fetch(1, 0.3) == []
    assert 0.25 <= time.monotonic() - started < 1.0


def test_start_earliest_or_latest(nats_url: str, names: tuple[str, str], make_source: MakeSource):
    subject, _ = names
    make_source(durable="setup")  # creates the stream
    publish(nats_url, subject, b"old")
    latest = make_source(durable="latest", start="latest")
    earliest = make_source(durable="earliest", start="earliest")
    assert latest.fetch(5, 0.3) == []
    assert datas(earliest.fetch(5, 0.3)) == [b"old"]


def test_close_from_another_thread_ends_a_blocking_fetch(make_source: MakeSource):
    source = make_source()
    result: list[list[Message]] = []
    fetching = threading.Thread(target=lambda: result.append(source.fetch(1, 30.0)))
    fetching.start()
    time.sleep(0.2)

    started = time.monotonic()
    source.close()
    fetching.join(5.0)

    assert not fetching.is_alive()
    assert time.monotonic() - started < 1.0
    assert result == [[]]
    assert source.fetch(1, 5.0) == []
    source.close()  # idempotent
    with pytest.raises(SourceError, match="closed"):
        source.ack([Message("S:1", b"", 0.0)])


def test_unreachable_server_is_a_clear_source_error():
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        NatsJetStreamSource("nats://127.0.0.1:1", "events", "d")
    assert time.monotonic() - started < 3.0
    message = str(caught.value)
    assert message.startswith("cannot connect to NATS at nats://127.0.0.1:1")
    assert "\n" not in message


def test_close_during_a_fetch_leaves_no_task_exception_to_log(
    make_source: MakeSource, caplog: pytest.LogCaptureFixture
):
    import gc

    caplog.set_level(logging.ERROR, logger="asyncio")
    for _ in range(5):  # the close and the pull race; each way must stay quiet
        source = make_source()
        fetching = threading.Thread(target=source.fetch, args=(1, 30.0))
        fetching.start()
        wait_for(lambda s=source: bool(s._inflight), timeout=5, what="a fetch in progress")
        source.close()
        fetching.join(5.0)
        assert not fetching.is_alive()
    gc.collect()  # an exception nobody retrieved is logged when its task is collected
    assert [r.getMessage() for r in caplog.records] == []
