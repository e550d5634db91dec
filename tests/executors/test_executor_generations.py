"""New code for new runs: a reloaded executor runs each attempt on the code of its run."""

from __future__ import annotations

import itertools
import os
import socket
import stat
import sys
import time

import pytest

from legato import pipeline, task
from legato.definitions.pipeline import Pipeline
from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.local import LocalExecutor
from legato.results import ResultStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _load(label: str, version: str) -> dict[str, Pipeline]:
    # Two loads of "the same" pipeline, as a reload of an edited module makes them.
    @task(name="which")
    def which() -> str:
        return label

    @task(name="which_here", in_process=True)
    def which_here() -> str:
        return label

    @pipeline(name="gen")
    def gen() -> None:
        which()
        which_here()

    gen.code_version = version
    return {"gen": gen}


_numbers = itertools.count(1)


def _spec(tmp_path, version: str, node: str = "which") -> AttemptSpec:
    key = f"{node}_{next(_numbers)}"
    return AttemptSpec(
        run_id="run1",
        pipeline="gen",
        node=node,
        task_key=key,
        map_index=None,
        attempt=1,
        args=(),
        kwargs=(),
        params={},
        partition=None,
        result_key=f"run1/{key}",
        log_path=str(tmp_path / f"{key}.log"),
        timeout=None,
        in_process=node == "which_here",
        code_version=version,
    )


def _run(ex: LocalExecutor, spec: AttemptSpec, results: ResultStore) -> object:
    ex.submit(spec)
    out: list[AttemptOutcome] = []
    deadline = time.monotonic() + 30
    while not out and time.monotonic() < deadline:
        out = ex.wait(0.5)
    [done] = out
    assert done.status == "succeeded", done
    assert done.result is not None
    return results.get(done.result)


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_attempts_run_on_the_code_of_their_run_until_it_is_let_go(tmp_path, mode) -> None:
    results = ResultStore(tmp_path / "results")
    ex = LocalExecutor(workers=2, results=results, mode=mode)
    ex.start(_load("old", "v1"))
    try:
        first_zygote = ex.zygote_pid
        assert _run(ex, _spec(tmp_path, "v1"), results) == "old"

        ex.reload(_load("new", "v2"))
        assert ex.free_slots() == 2
        assert _run(ex, _spec(tmp_path, "v2"), results) == "new"
        assert _run(ex, _spec(tmp_path, "v1"), results) == "old"  # a run begun before
        assert _run(ex, _spec(tmp_path, "v1", "which_here"), results) == "old"
        assert _run(ex, _spec(tmp_path, "v2", "which_here"), results) == "new"
        assert ex.generations == 2
        if mode == "process":
            assert ex.zygote_pid != first_zygote
            assert len(ex.worker_pids) <= 2  # the old code keeps no idle worker

        ex.retain({"v1", "v2"})
        assert ex.generations == 2
        ex.retain({"v2"})  # the last run on the old code ended
        assert ex.generations == 1
        if mode == "process":
            assert not os.path.exists(f"/proc/{first_zygote}")  # stopped and reaped
        assert _run(ex, _spec(tmp_path, "v2"), results) == "new"
    finally:
        ex.shutdown()


def _socket_inodes(pid: int) -> set[int]:
    found = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode):
            found.add(st.st_ino)
    return found


def test_a_zygote_forked_for_new_code_keeps_no_connection_of_the_driver(tmp_path) -> None:
    # By then the driver serves HTTP: a copy of a client's connection in the zygote would
    # keep it open after the server closed it, and the listening socket would hold the port.
    results = ResultStore(tmp_path / "results")
    ex = LocalExecutor(workers=1, results=results)
    ex.start(_load("old", "v1"))
    server = socket.socket()
    try:
        server.bind(("127.0.0.1", 0))
        server.listen()
        ex.reload(_load("new", "v2"))
        assert _run(ex, _spec(tmp_path, "v2"), results) == "new"
        assert ex.zygote_pid is not None
        assert os.fstat(server.fileno()).st_ino not in _socket_inodes(ex.zygote_pid)
        assert len(_socket_inodes(ex.zygote_pid)) >= 1  # its own control socket stays
    finally:
        server.close()
        ex.shutdown()


def test_the_first_zygote_keeps_no_listening_socket_of_the_driver(tmp_path) -> None:
    # `legato up` binds its web port before the executor forks its first zygote: a copy of
    # the listening socket in the zygote or its workers would hold the port.
    results = ResultStore(tmp_path / "results")
    server = socket.socket()
    ex = LocalExecutor(workers=1, results=results)
    try:
        server.bind(("127.0.0.1", 0))
        server.listen()
        ex.start(_load("old", "v1"))
        assert _run(ex, _spec(tmp_path, "v1"), results) == "old"
        assert ex.zygote_pid is not None
        assert os.fstat(server.fileno()).st_ino not in _socket_inodes(ex.zygote_pid)
    finally:
        server.close()
        ex.shutdown()
