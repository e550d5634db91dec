"""Stream triggers end to end: `legato up` against the real Redis and NATS JetStream servers.

The servers are ``LEGATO_TEST_REDIS_URL`` / ``LEGATO_TEST_NATS_URL`` or the local defaults;
unreachable: the tests are skipped, or fail when CI=true. Every stream they create is deleted.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import Daemons, http_client, make_project, marks, run_with_nats, wait_for

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.store.store import Store


def all_runs(store: Store) -> list[RunRecord]:
    return sorted(store.browse.list_runs(limit=None), key=lambda r: r.id)


def wait_succeeded(store: Store, count: int, timeout: float = 15.0) -> list[RunRecord]:
    """Wait until ``count`` runs succeeded; every run then."""

    def enough() -> bool:
        return sum(1 for r in all_runs(store) if r.state.value == "succeeded") >= count

    try:
        wait_for(enough, timeout=timeout, what=f"{count} succeeded runs")
    except AssertionError:
        found = [(r.state.value, r.params, r.error) for r in all_runs(store)]
        raise AssertionError(f"{count} succeeded runs expected; the store has {found}") from None
    return all_runs(store)


MARK = """
from pathlib import Path
from legato import pipeline, task
from legato.triggers import nats_stream, redis_stream

HERE = Path(__file__).parent

def mark(line):
    with open(HERE / "marks.txt", "a") as fh:
        fh.write(line + "\\n")
"""

# -- Redis streams ------------------------------------------------------------------------------


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    import redis

    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def streams(redis_client: Any) -> Iterator[Callable[[], str]]:
    """``streams()``: a new unique stream name; every one is deleted after the test."""
    made: list[str] = []

    def new() -> str:
        made.append(f"legato-e2e-{uuid.uuid4().hex}")
        return made[-1]

    yield new
    if made:
        redis_client.delete(*made)


def xadd(client: Any, stream: str, *payloads: str) -> list[str]:
    """Append the payloads at once (one transaction); their entry ids."""
    pipe = client.pipeline(transaction=True)
    for p in payloads:
        pipe.xadd(stream, {"payload": p})
    return [i.decode() for i in pipe.execute()]


REDIS_CODE = (
    MARK
    + """
@task(retries=1)  # a run interrupted by a crash carries on with a second attempt
def take(n: int) -> int:
    mark(f"n{n}")
    return n

@pipeline(triggers=[redis_stream("STREAM", url="URL", start="earliest")])
def one_each(n: int):
    take(n)

@task
def take_all(messages: list) -> int:
    mark("batch:" + ",".join(str(m["n"]) for m in messages))
    return len(messages)

@pipeline(triggers=[redis_stream("BATCHES", url="URL", start="earliest", batch=3,
                                 param="messages", max_wait="1s")])
def batched(messages: list):
    take_all(messages)
"""
)


def redis_project(root: Path, url: str, stream: str, batches: str) -> Path:
    code = REDIS_CODE.replace("BATCHES", batches).replace("STREAM", stream).replace("URL", url)
    return make_project(root, code)


def test_redis_messages_make_runs_and_bad_payloads_are_recorded_as_failed(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    redis_client: Any,
    redis_url: str,
    streams: Callable[[], str],
) -> None:
    stream, batches = streams(), streams()
    project = redis_project(tmp_path / "proj", redis_url, stream, batches)
    first_ids = xadd(redis_client, stream, json.dumps({"n": 1}), json.dumps({"n": 2}))
    daemons.up(project)
    store = store_of(project)
    runs = wait_succeeded(store, 2)
    assert sorted(r.params["n"] for r in runs) == [1, 2]
    assert {r.pipeline for r in runs} == {"one_each"}
    assert {r.origin for r in runs} == {f"trigger:redis-{stream}"}

    bad_ids = xadd(redis_client, stream, "this is not JSON", "[1, 2]")
    xadd(redis_client, stream, json.dumps({"n": 3}))
    runs = wait_succeeded(store, 3)
    assert sorted(r.params["n"] for r in runs) == [1, 2, 3]
    events = store.triggers.trigger_events(pipeline="one_each", limit=100)
    failed = {e.event_key: e for e in events if e.status == "failed"}
    assert set(failed) == set(bad_ids)
    assert "not JSON" in (failed[bad_ids[0]].message or "")
    assert "JSON object" in (failed[bad_ids[1]].message or "")
    made = {e.event_key for e in events if e.status == "run_created"}
    assert set(first_ids) <= made and len(made) == 3
    assert sorted(marks(project / "marks.txt")) == ["n1", "n2", "n3"]
    # Every message is acknowledged, the failed ones too: nothing stays pending in the group.
    wait_for(
        lambda: redis_client.xpending(stream, "legato-one_each")["pending"] == 0,
        timeout=5,
        what="every message acknowledged",
    )


def test_redis_batch_of_three_quick_messages_makes_one_run(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    redis_client: Any,
    redis_url: str,
    streams: Callable[[], str],
) -> None:
    stream, batches = streams(), streams()
    project = redis_project(tmp_path / "proj", redis_url, stream, batches)
    daemon = daemons.up(project)
    daemon.wait_output("Ctrl-C stops")
    time.sleep(1.0)  # the listener is waiting for messages
    xadd(redis_client, batches, *(json.dumps({"n": n}) for n in (1, 2, 3)))
    store = store_of(project)
    runs = wait_succeeded(store, 1)
    time.sleep(1.5)  # longer than max_wait: a split batch would show as a second run
    runs = all_runs(store)
    assert len(runs) == 1, [r.params for r in runs]
    assert runs[0].pipeline == "batched"
    assert runs[0].params == {"messages": [{"n": 1}, {"n": 2}, {"n": 3}]}
    assert marks(project / "marks.txt") == ["batch:1,2,3"]


def test_redis_restarts_never_turn_a_message_into_a_second_run(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    redis_client: Any,
    redis_url: str,
    streams: Callable[[], str],
) -> None:
    stream, batches = streams(), streams()
    project = redis_project(tmp_path / "proj", redis_url, stream, batches)
    first = daemons.up(project)
    first.wait_output("Ctrl-C stops")
    wait_for(
        lambda: bool(redis_client.exists(stream)) and _has_group(redis_client, stream),
        timeout=10,
        what="the consumer group",
    )
    assert first.stop() == 0, first.output()

    # Arrives while the daemon is down.
    xadd(redis_client, stream, json.dumps({"n": 1}))
    second = daemons.up(project)
    store = store_of(project)
    # Crash as soon as its run is recorded: the message may not be acknowledged yet, and is
    # then delivered again to the next daemon (same consumer name), which must see its run.
    wait_for(lambda: bool(all_runs(store)), timeout=15, what="a run for message 1")
    second.kill()
    third = daemons.up(project)
    xadd(redis_client, stream, json.dumps({"n": 2}))  # proves the third daemon listens
    wait_succeeded(store, 2)
    assert third.stop() == 0, third.output()
    fourth = daemons.up(project)
    xadd(redis_client, stream, json.dumps({"n": 3}))
    runs = wait_succeeded(store, 3)
    time.sleep(1.0)
    runs = all_runs(store)
    assert sorted(r.params["n"] for r in runs) == [1, 2, 3], [r.params for r in runs]
    done = marks(project / "marks.txt")
    assert sorted(set(done)) == ["n1", "n2", "n3"]
    # n1's task runs again only if the crash interrupted it.
    assert done.count("n1") <= 2 and done.count("n2") == 1 and done.count("n3") == 1, done
    assert fourth.proc.poll() is None, fourth.output()


def _has_group(client: Any, stream: str) -> bool:
    return any(g["name"] == b"legato-one_each" for g in client.xinfo_groups(stream))


# -- NATS JetStream --------------------------------------------------------------------------




def publish(url: str, subject: str, *payloads: bytes) -> None:
    async def work(js: Any) -> None:
        for p in payloads:
            await js.publish(subject, p)

    run_with_nats(url, work)


@pytest.fixture
def nats_names(nats_url: str) -> Iterator[tuple[str, str]]:
    """A unique (subject, stream name); the stream is deleted after the test."""
    token = uuid.uuid4().hex
    subject, stream = f"legato.e2e.{token}", f"LEGATO_E2E_{token}"
    yield subject, stream

    async def cleanup(js: Any) -> None:
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)

    run_with_nats(nats_url, cleanup)


NATS_CODE = (
    MARK
    + """
@task(retries=1)  # a run interrupted by a crash carries on with a second attempt
def take(n: int) -> int:
    mark(f"n{n}")
    return n

@pipeline(triggers=[nats_stream("SUBJECT", url="URL", stream="STREAM", create_stream=True,
                                start="earliest", ack_wait="2s")])
def from_nats(n: int):
    take(n)
"""
)


def test_nats_messages_make_one_run_each_across_restarts(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    nats_url: str,
    nats_names: tuple[str, str],
) -> None:
    subject, stream = nats_names
    code = NATS_CODE.replace("SUBJECT", subject).replace("STREAM", stream).replace("URL", nats_url)
    project = make_project(tmp_path / "proj", code)
    first = daemons.up(project)
    store = store_of(project)

    async def stream_exists(js: Any) -> bool:
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(stream)
        except NotFoundError:
            return False
        return True

    # The daemon creates the stream (create_stream=True).
    wait_for(lambda: run_with_nats(nats_url, stream_exists), timeout=10, what="the stream")
    publish(nats_url, subject, *(json.dumps({"n": n}).encode() for n in (1, 2)))
    runs = wait_succeeded(store, 2)
    assert sorted(r.params["n"] for r in runs) == [1, 2]
    assert {r.origin for r in runs} == {f"trigger:nats-{subject.replace('.', '-')}"}

    # A clean restart, then a crash right after the next run is recorded (its message may
    # not be acknowledged): neither turns a message into a second run.
    assert first.stop() == 0, first.output()
    assert "Traceback" not in first.output(), first.output()  # a clean stop is quiet
    second = daemons.up(project)
    publish(nats_url, subject, json.dumps({"n": 3}).encode())
    wait_for(lambda: len(all_runs(store)) >= 3, timeout=15, what="a run for message 3")
    second.kill()
    publish(nats_url, subject, json.dumps({"n": 4}).encode())  # while nothing listens
    daemons.up(project)
    wait_succeeded(store, 4)
    time.sleep(2.5)  # longer than ack_wait: an unacknowledged message comes back by now
    runs = all_runs(store)
    assert sorted(r.params["n"] for r in runs) == [1, 2, 3, 4], [r.params for r in runs]
    assert {r.state.value for r in runs} == {"succeeded"}, [(r.params, r.error) for r in runs]
    done = marks(project / "marks.txt")
    assert sorted(set(done)) == ["n1", "n2", "n3", "n4"]
    assert done.count("n3") <= 2 and all(done.count(m) == 1 for m in ("n1", "n2", "n4")), done


def test_refused_messages_are_shown_with_their_reasons_in_the_cli_and_the_web_ui(
    tmp_path: Path,
    daemons: Daemons,
    store_of: Callable[[Path], Store],
    redis_client: Any,
    redis_url: str,
    streams: Callable[[], str],
) -> None:
    import re

    from tests.helpers import cli

    stream, batches = streams(), streams()
    project = redis_project(tmp_path / "proj", redis_url, stream, batches)
    daemon = daemons.up(project)
    daemon.wait_output("web UI at")
    url = re.search(r"web UI at (http://\S+?)/ ", daemon.output())
    assert url is not None, daemon.output()
    not_json = xadd(redis_client, stream, "this is not JSON")[0]
    bad_param = xadd(redis_client, stream, json.dumps({"n": "many"}))[0]
    no_field = redis_client.xadd(stream, {"body": json.dumps({"n": 4})}).decode()
    good = xadd(redis_client, stream, json.dumps({"n": 5}))[0]
    store = store_of(project)
    wait_succeeded(store, 1)
    trigger = f"redis-{stream}"

    def refused_count() -> int:
        events = store.triggers.trigger_events(pipeline="one_each", limit=100)
        return sum(1 for e in events if e.status == "failed")

    wait_for(lambda: refused_count() == 3, timeout=10, what="three refused messages")

    shown = cli("triggers", "events", "one_each", trigger, "--json", project=project)
    assert shown.returncode == 0, shown.stderr
    by_key = {e["event_key"]: e for e in json.loads(shown.stdout)}
    assert set(by_key) == {not_json, bad_param, no_field, good}
    assert by_key[good]["refused"] is False and by_key[good]["run_id"]
    for key in (not_json, bad_param, no_field):
        assert by_key[key]["refused"] is True and by_key[key]["run_id"] is None
    assert "not JSON" in by_key[not_json]["reason"]
    assert "'n'" in by_key[bad_param]["reason"]
    assert "body" in by_key[no_field]["reason"] or "'n'" in by_key[no_field]["reason"]

    table = cli("triggers", "events", "one_each", trigger, "--refused", project=project)
    assert table.returncode == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if "refused" in line]
    assert len(lines) == 3, table.stdout
    assert good not in table.stdout
    assert "payload is not JSON" in table.stdout

    page = http_client(url.group(1), project).get("/pipelines/one_each").text
    assert "Refused trigger events" in page
    for key in (not_json, bad_param, no_field):
        assert key in page
    assert "payload is not JSON" in page
    assert good not in page
