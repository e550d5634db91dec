"""RedisStreamSource against the real Redis server (skipped if absent, failed if CI=true)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from legato.scheduler.sources import Message, RedisStreamSource, SourceError, StreamSource

MakeSource = Callable[..., RedisStreamSource]


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    import redis

    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def stream(client: Any) -> Iterator[str]:
    name = f"legato-test-{uuid.uuid4().hex}"
    yield name
    client.delete(name)


@pytest.fixture
def make_source(redis_url: str, stream: str) -> Iterator[MakeSource]:
    """``make_source(group="g", consumer="c", **options)``, closed after the test."""
    made: list[RedisStreamSource] = []

    def make(group: str = "g", consumer: str = "c", **options: Any) -> RedisStreamSource:
        source = RedisStreamSource(redis_url, stream, group, consumer, **options)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def add(client: Any, stream: str, *payloads: str) -> list[str]:
    return [client.xadd(stream, {"payload": p}).decode() for p in payloads]


def datas(messages: list[Message]) -> list[bytes]:
    return [m.data for m in messages]


def test_delivers_each_message_once_in_order(client: Any, stream: str, make_source: MakeSource):
    source = make_source()
    assert isinstance(source, StreamSource)
    ids = add(client, stream, "m0", "m1", "m2", "m3", "m4")
    before = time.time()

    got = source.fetch(5, 5.0)

    assert [m.id for m in got] == ids
    assert datas(got) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert not any(m.redelivered for m in got)
    assert all(before <= m.received_at <= time.time() for m in got)
    source.ack(got)
    assert source.fetch(1, 0.2) == []
    assert client.xpending(stream, "g")["pending"] == 0


def test_micro_batch_waits_for_the_batch_or_the_deadline(
    client: Any, stream: str, make_source: MakeSource
):
    source = make_source()
    add(client, stream, "a", "b", "c")
    started = time.monotonic()
    assert datas(source.fetch(10, 0.5)) == [b"a", b"b", b"c"]
    assert 0.45 <= time.monotonic() - started < 1.5  # kept collecting until max_wait

    add(client, stream, *[f"n{i}" for i in range(10)])
    started = time.monotonic()
    assert datas(source.fetch(4, 5.0)) == [b"n0", b"n1", b"n2", b"n3"]
    assert time.monotonic() - started < 1.0  # early: the batch was full

    # Messages that arrive after the first one join the same batch.
    for message in source.fetch(10, 0.1):
        source.ack([message])
    threading.Timer(0.3, add, (client, stream, "late1", "late2")).start()
    add(client, stream, "early")
    started = time.monotonic()
    assert datas(source.fetch(3, 5.0)) == [b"early", b"late1", b"late2"]
    assert time.monotonic() - started < 2.0


def test_fetch_returns_empty_after_max_wait(make_source: MakeSource):
    source = make_source()
    started = time.monotonic()
    assert source.fetch(1, 0.3) == []
    assert 0.28 <= time.monotonic() - started < 1.0
    assert source.fetch(5, 0) == []


def test_unacked_messages_are_redelivered_after_a_restart(
    client: Any, stream: str, make_source: MakeSource
):
    first = make_source()
    ids = add(client, stream, "m0", "m1", "m2")
    got = first.fetch(3, 2.0)
    first.ack(got[:1])
    first.close()

    second = make_source()  # same group and consumer: a restarted process
    again = second.fetch(10, 0.3)
    assert [m.id for m in again] == ids[1:]
    assert datas(again) == [b"m1", b"m2"]
    assert all(m.redelivered for m in again)
    second.ack(again)
    new_id = add(client, stream, "m3")
    fresh = second.fetch(10, 0.3)
    assert [(m.id, m.redelivered) for m in fresh] == [(new_id[0], False)]
    second.ack(fresh)
    second.close()

    assert make_source().fetch(10, 0.3) == []


def test_replay_of_own_pending_entries_is_paged_by_max_messages(
    client: Any, stream: str, make_source: MakeSource
):
    first = make_source()
    add(client, stream, *[f"m{i}" for i in range(5)])
    assert len(first.fetch(5, 2.0)) == 5  # delivered, never acked
    restarted = make_source()
    assert datas(restarted.fetch(2, 0.2)) == [b"m0", b"m1"]
    assert datas(restarted.fetch(2, 0.2)) == [b"m2", b"m3"]
    assert datas(restarted.fetch(2, 0.2)) == [b"m4"]


def test_another_consumer_takes_over_idle_entries(
    client: Any, stream: str, make_source: MakeSource
):
    dead = make_source(consumer="dead")
    ids = add(client, stream, "m0", "m1")
    assert len(dead.fetch(2, 2.0)) == 2  # and never acked

    patient = make_source(consumer="patient", claim_idle=30.0)
    assert patient.fetch(10, 0.2) == []  # not idle long enough

    time.sleep(0.15)
    rescuer = make_source(consumer="rescuer", claim_idle=0.1)
    taken = rescuer.fetch(10, 0.3)
    assert [m.id for m in taken] == ids
    assert all(m.redelivered for m in taken)
    owners = {p["consumer"] for p in client.xpending_range(stream, "g", "-", "+", 10)}
    assert owners == {b"rescuer"}
    rescuer.ack(taken)
    assert client.xpending(stream, "g")["pending"] == 0


def test_entries_deleted_while_pending_are_acked_and_skipped(
    client: Any, stream: str, make_source: MakeSource
):
    ids = add(client, stream, "keep", "gone")
    make_source(start="earliest").fetch(2, 2.0)
    client.xdel(stream, ids[1])

    again = make_source().fetch(10, 0.2)
    assert [m.id for m in again] == ids[:1]
    assert client.xpending(stream, "g")["pending"] == 1


def test_start_earliest_or_latest(client: Any, stream: str, make_source: MakeSource):
    add(client, stream, "old1", "old2")
    latest = make_source(group="latest", start="latest")
    earliest = make_source(group="earliest", start="earliest")
    assert latest.fetch(10, 0.2) == []
    assert datas(earliest.fetch(10, 0.2)) == [b"old1", b"old2"]

    add(client, stream, "new")
    assert datas(latest.fetch(10, 0.2)) == [b"new"]
    assert datas(earliest.fetch(10, 0.2)) == [b"new"]


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
        source.ack([Message("1-0", b"", 0.0)])


def test_entry_without_the_payload_field_is_json_of_its_fields(
    client: Any, stream: str, make_source: MakeSource
):
    source = make_source()
    client.xadd(stream, {"kind": "order", "id": "42"})
    client.xadd(stream, {"body": b"\x00raw"})
    (as_json, other) = source.fetch(2, 2.0)
    assert json.loads(as_json.data) == {"kind": "order", "id": "42"}
    assert json.loads(other.data) == {"body": "\x00raw"}

    custom = make_source(group="custom", start="earliest", field="body")
    assert datas(custom.fetch(2, 0.2))[1] == b"\x00raw"


def test_unreachable_server_is_a_clear_source_error():
    with pytest.raises(SourceError) as caught:
        RedisStreamSource("redis://user:s3cret@127.0.0.1:1/0", "events", "g", "c")
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "'events'" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_bad_arguments_are_rejected_before_connecting():
    url = "redis://127.0.0.1:1/0"
    with pytest.raises(ValueError, match="start"):
        RedisStreamSource(url, "s", "g", "c", start="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="claim_idle"):
        RedisStreamSource(url, "s", "g", "c", claim_idle=0)
