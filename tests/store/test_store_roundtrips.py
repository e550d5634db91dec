"""On PostgreSQL a plain driver step (a task ended, the next started) is one round trip.

The store talks to PostgreSQL through a real TCP proxy that counts the client's turns: each
time the client speaks after the server has answered, it waited for that answer.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import make_url

from legato.domain.records import Changes, LeaseLost
from legato.domain.states import TaskState
from legato.store.store import Store
from tests.store.store_testkit import T0, Records, leased_with_tasks, typical_step

MIN = timedelta(minutes=1)


class TurnCounter:
    """Forwards one port to PostgreSQL; ``turns`` counts the client's requests that came
    after an answer (a pipelined batch is one turn, each awaited statement another)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.turns = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        answered: dict[socket.socket, bool] = {}  # client socket -> server spoke last
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data is None:  # a new client: pair it with a server connection
                    client, _addr = self._listener.accept()
                    server = socket.create_connection(self._target)
                    sel.register(client, selectors.EVENT_READ, (server, client))
                    sel.register(server, selectors.EVENT_READ, (client, None))
                    answered[client] = True
                    continue
                peer, client = key.data
                data = sock.recv(65536)
                if not data:
                    sel.unregister(sock)
                    sel.unregister(peer)
                    sock.close()
                    peer.close()
                    continue
                if client is not None:  # the client spoke
                    if answered[client]:
                        self.turns += 1
                    answered[client] = False
                else:
                    answered[peer] = True
                peer.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


@pytest.fixture
def counted(pg_url: str) -> Iterator[tuple[Store, TurnCounter]]:
    url = make_url(pg_url)
    proxy = TurnCounter(url.host or "127.0.0.1", url.port or 5432)
    store = Store.open(url.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    try:
        yield store, proxy
    finally:
        store.close()
        proxy.close()


def test_a_plain_step_is_one_round_trip(
    counted: tuple[Store, TurnCounter], rec: Records
) -> None:
    store, proxy = counted
    run = leased_with_tasks(store, rec)
    store.runs.apply(Changes(run.id, "driver", T0 + MIN))  # the step connection is opened
    before = proxy.turns
    store.runs.apply(typical_step(rec, run))
    assert proxy.turns - before == 1
    assert [t.state for t in store.runs.get_task_runs(run.id)] == [
        TaskState.SUCCEEDED, TaskState.RUNNING, TaskState.QUEUED
    ]


def test_the_step_connection_serves_on_after_a_lost_lease(
    counted: tuple[Store, TurnCounter], rec: Records
) -> None:
    store, _proxy = counted
    run = leased_with_tasks(store, rec)
    with pytest.raises(LeaseLost, match="held by driver"):
        store.runs.apply(typical_step(rec, run, owner="intruder"))
    assert store.runs.get_attempts(run.id) == []
    store.runs.apply(typical_step(rec, run))
    assert [a.task_key for a in store.runs.get_attempts(run.id)] == ["a"]


def test_a_step_that_moves_a_partition_is_still_one_round_trip(
    counted: tuple[Store, TurnCounter], rec: Records
) -> None:
    store, proxy = counted
    made = rec.run(partition="2024-05-01")
    store.runs.create_run(made, [rec.task(made, k) for k in ("a", "b")], [])
    run = store.runs.acquire_lease(made.id, "driver", T0 + MIN, T0)
    assert run is not None
    store.runs.apply(Changes(run.id, "driver", T0 + MIN))  # the step connection is opened
    before = proxy.turns
    store.runs.apply(typical_step(rec, run))  # the run starts: its partition's state with it
    assert proxy.turns - before == 1
    assert store.backfills.partition_states("etl") == {"2024-05-01": ("running", run.id)}
