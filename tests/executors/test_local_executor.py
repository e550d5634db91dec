"""LocalExecutor with real worker processes (and threads): no mocks."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from legato import Context, FailNow, pipeline, task
from legato.executors.interface import AttemptSpec, Stored, Value
from legato.executors.local import ExecutorError, LocalExecutor
from legato.results import ResultStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@task
def add(a, b):
    return a + b


@task
def noisy(ctx: Context):
    print("printed line")
    ctx.log.info("context log line")
    logging.getLogger("user.code").warning("user warning line")
    os.write(1, b"raw fd line\n")
    subprocess.run(["sh", "-c", "echo child process line"], check=True)
    return "done"


@task(retries=2)
def flaky():
    raise ValueError("bad row 12")


@task(retries=2)
def give_up():
    raise FailNow("stop here")


@task(retries=2, retry_on=KeyError)
def wrong_kind():
    raise ValueError("not a KeyError")


@task
def segfault():
    ctypes.string_at(0)


@task
def hard_exit():
    os._exit(3)


@task
def hang():
    time.sleep(60)


@task
def spawn_and_hang(pid_file):
    child = subprocess.Popen(["sleep", "60"])
    with open(pid_file, "w") as f:
        f.write(str(child.pid))
    time.sleep(60)


@task
def hog(mb):
    block = bytearray(mb * 1024 * 1024)
    return len(block) // (1024 * 1024)


@task
def pid():
    return os.getpid()


@task
def chatty(tag, n):
    for i in range(n):
        print(f"{tag} line {i}")
        time.sleep(0.002)
    return tag


@task(in_process=True)
def light(x):
    return (x, threading.current_thread().name)


@pipeline
def suite():
    add(1, 2)
    noisy()
    flaky()
    give_up()
    wrong_kind()
    segfault()
    hard_exit()
    hang()
    spawn_and_hang("x")
    hog(1)
    pid()
    chatty("a", 1)
    light(1)


PIPELINES = {"suite": suite}


class Specs:
    """Builds AttemptSpecs by hand, each with its own task key and log file."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.n = 0

    def __call__(self, node, *args, attempt=1, **kw) -> AttemptSpec:
        self.n += 1
        key = f"{node}_{self.n}"
        return AttemptSpec(
            run_id="run1", pipeline="suite", node=node, task_key=key, map_index=None,
            attempt=attempt, args=tuple(a if isinstance(a, Stored) else Value(a) for a in args),
            kwargs=(), params={}, partition=None, result_key=f"run1/{key}",
            log_path=str(self.tmp_path / "logs" / f"{key}.log"), timeout=None, **kw,
        )


def gone(pid: int) -> bool:
    """No such process, or a zombie that merely waits for a reaper we do not control."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def read(path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def wait_for(ex, count, timeout=20.0):
    out, deadline = [], time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out += ex.wait(0.5)
    assert len(out) == count, out
    return out


def run_one(ex, spec, timeout=20.0):
    ex.submit(spec)
    (outcome,) = wait_for(ex, 1, timeout)
    assert (outcome.task_key, outcome.attempt) == (spec.task_key, spec.attempt)
    return outcome


@pytest.fixture
def specs(tmp_path):
    return Specs(tmp_path)


@pytest.fixture
def results(tmp_path):
    return ResultStore(tmp_path / "results")


@pytest.fixture
def pool(results):
    ex = LocalExecutor(workers=2, results=results)
    ex.start(PIPELINES)
    pids = {ex.zygote_pid, *ex.worker_pids}
    yield ex
    pids |= set(ex.worker_pids)  # replacements too
    ex.shutdown()
    ex.shutdown()  # idempotent
    assert all(gone(p) for p in pids)


def test_start_prewarms_workers(pool):
    assert len(pool.worker_pids) == 2
    assert pool.free_slots() == 2


def test_shutdown_leaves_no_process(results, specs):
    ex = LocalExecutor(workers=3, results=results)
    ex.start(PIPELINES)
    ex.submit(specs("hang"))  # a busy worker too
    pids = [ex.zygote_pid, *ex.worker_pids]
    assert len(pids) == 4
    ex.shutdown()
    for p in pids:  # reaped, not even zombies: the zygote reaps workers, we reap the zygote
        with pytest.raises(ProcessLookupError):
            os.kill(p, 0)
    assert ex.free_slots() == 0 and ex.wait(0) == []
    with pytest.raises(ExecutorError):
        ex.submit(specs("add", 1, 2))


def test_submit_without_a_free_slot_raises(results, specs):
    with LocalExecutor(workers=1, results=results) as ex:
        ex.start(PIPELINES)
        ex.submit(specs("hang"))
        assert ex.free_slots() == 0
        with pytest.raises(ExecutorError, match="no free worker"):
            ex.submit(specs("add", 1, 2))


def test_result_is_stored_and_readable(pool, specs, results):
    spec = specs("add", 2, 3)
    out = run_one(pool, spec)
    assert out.status == "succeeded", out.error
    assert out.worker.startswith("pid ")
    assert results.get(out.result) == 5
    nxt = run_one(pool, specs("add", Stored(out.result), 1))  # an upstream result as input
    assert results.get(nxt.result) == 6


def test_every_kind_of_output_reaches_the_log(pool, specs):
    spec = specs("noisy")
    out = run_one(pool, spec)
    assert out.status == "succeeded", out.error
    text = read(spec.log_path)
    for line in ("printed line", "INFO legato.task.noisy_1: context log line",
                 "WARNING user.code: user warning line", "raw fd line", "child process line"):
        assert line in text, text
    assert text.count("user warning line") == 1


def test_errors_and_retryability(pool, specs):
    out = run_one(pool, specs("flaky"))
    assert (out.status, out.retryable, out.error) == ("failed", True, "ValueError: bad row 12")
    assert "raise ValueError" in out.traceback
    out = run_one(pool, specs("give_up"))
    assert (out.status, out.retryable, out.error) == ("failed", False, "FailNow: stop here")
    out = run_one(pool, specs("wrong_kind"))
    assert (out.status, out.retryable) == ("failed", False)


@pytest.mark.parametrize("node,error", [
    ("segfault", "worker process died (signal 11: SIGSEGV)"),
    ("hard_exit", "worker process exited with code 3"),
])
def test_crashing_worker_fails_only_its_attempt(pool, specs, results, node, error):
    spec = specs(node)
    out = run_one(pool, spec)
    assert (out.status, out.error, out.retryable) == ("crashed", error, True)
    log = read(spec.log_path)
    assert f"legato: {error}" in log
    if node == "segfault":
        assert "Segmentation fault" in log  # faulthandler wrote the Python traceback there
    assert pool.free_slots() == 2  # a replacement is on its way or ready
    outs = [run_one(pool, specs("add", i, 1)) for i in range(3)]
    assert [results.get(o.result) for o in outs] == [1, 2, 3]
    deadline = time.monotonic() + 10
    while len(pool.worker_pids) < 2 and time.monotonic() < deadline:
        pool.wait(0.05)  # the replacement's fork may still be on its way
    assert len(pool.worker_pids) == 2


def test_kill_hung_attempt(pool, specs, results):
    spec = specs("hang")
    label = pool.submit(spec)
    victim = int(label.split()[1])
    time.sleep(0.2)
    started = time.monotonic()
    pool.kill("run1", spec.task_key, 1, "timeout", "timed out after 0.2s")
    (out,) = wait_for(pool, 1)
    assert time.monotonic() - started < 2
    assert (out.status, out.error, out.retryable) == ("timeout", "timed out after 0.2s", True)
    assert "legato: attempt timeout: timed out after 0.2s" in read(spec.log_path)
    deadline = time.monotonic() + 5
    while not gone(victim) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(victim)
    assert results.get(run_one(pool, specs("add", 1, 1)).result) == 2
    assert pool.wait(0.1) == []  # nothing else comes of the killed attempt
    pool.kill("run1", spec.task_key, 1, "timeout", "again")  # finished: a no-op
    assert pool.wait(0.05) == []


def test_kill_takes_the_tasks_child_processes_too(pool, specs, tmp_path):
    pid_file = tmp_path / "child.pid"
    spec = specs("spawn_and_hang", str(pid_file))
    pool.submit(spec)
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(pid_file.read_text())
    assert not gone(child)
    pool.kill("run1", spec.task_key, 1, "timeout", "too slow")
    assert wait_for(pool, 1)[0].status == "timeout"
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(child)


def test_cancel_status(pool, specs):
    spec = specs("hang")
    pool.submit(spec)
    pool.kill("run1", spec.task_key, 1, "canceled", "run canceled")
    (out,) = wait_for(pool, 1)
    assert (out.status, out.error, out.retryable) == ("canceled", "run canceled", False)


def test_many_attempts_keep_both_workers_busy(pool, specs, results):
    todo = [specs("pid") for _ in range(40)]
    outs = []
    while len(outs) < 40:
        while todo and pool.free_slots():
            pool.submit(todo.pop())
        outs += pool.wait(5)
    assert all(o.status == "succeeded" for o in outs)
    assert sorted(o.task_key for o in outs) == sorted(f"pid_{i}" for i in range(1, 41))
    pids = {results.get(o.result) for o in outs}
    assert pids == set(pool.worker_pids) and len(pids) == 2  # the same two processes
    assert {o.worker for o in outs} == {f"pid {p}" for p in pids}


def test_wait_times_out_and_returns_at_once_when_idle(pool):
    started = time.monotonic()
    assert pool.wait(0.2) == []
    assert 0.15 < time.monotonic() - started < 2
    assert pool.wait(None) == []  # nothing running: would block forever otherwise


def test_memory_limit_fails_the_attempt_not_the_pool(results, specs):
    with LocalExecutor(workers=1, results=results, memory_limit_mb=256) as ex:
        ex.start(PIPELINES)
        out = run_one(ex, specs("hog", 2048))
        assert out.status == "failed"
        assert out.error.startswith("MemoryError")
        assert results.get(run_one(ex, specs("hog", 16)).result) == 16


def test_in_process_spec_runs_in_a_thread(pool, specs, results):
    spec = specs("light", 7, in_process=True)
    assert pool.submit(spec) == "thread"
    (out,) = wait_for(pool, 1)
    value, thread_name = results.get(out.result)
    assert value == 7 and thread_name != "MainThread"
    assert pool.free_slots() == 2  # threads do not take process slots


def test_zygote_death_is_reported(results, specs):
    ex = LocalExecutor(workers=2, results=results)
    ex.start(PIPELINES)
    try:
        spec = specs("hang")
        ex.submit(spec)
        os.kill(ex.zygote_pid, signal.SIGKILL)
        (out,) = wait_for(ex, 1)
        assert out.status == "crashed"
        deadline = time.monotonic() + 5
        with pytest.raises(ExecutorError, match="zygote"):  # once the idle worker is gone too
            while time.monotonic() < deadline:
                ex.wait(0.1)
        assert ex.worker_pids == []
        assert ex.free_slots() == 0
    finally:
        ex.shutdown()


def test_thread_mode(results, specs):
    with LocalExecutor(workers=2, results=results, mode="thread") as ex:
        ex.start(PIPELINES)
        assert ex.zygote_pid is None and ex.worker_pids == []
        a, b = specs("chatty", "a", 40), specs("chatty", "b", 40)
        assert ex.submit(a) == "thread" and ex.submit(b) == "thread"
        assert ex.free_slots() == 0
        outs = wait_for(ex, 2)
        assert {results.get(o.result) for o in outs} == {"a", "b"}
        for spec, tag in ((a, "a"), (b, "b")):
            lines = read(spec.log_path).splitlines()
            assert lines == [f"{tag} line {i}" for i in range(40)]
        out = run_one(ex, specs("flaky"))
        assert (out.status, out.retryable) == ("failed", True)


def test_thread_mode_kill_reports_at_once_and_drops_the_late_result(results, specs):
    with LocalExecutor(workers=1, results=results, mode="thread") as ex:
        ex.start(PIPELINES)
        slow = specs("chatty", "slow", 100)  # about 0.2 s
        ex.submit(slow)
        ex.kill("run1", slow.task_key, 1, "timeout", "too slow")
        (out,) = ex.wait(1)
        assert (out.status, out.error) == ("timeout", "too slow")
        assert ex.free_slots() == 1  # the abandoned thread does not hold the slot
        assert results.get(run_one(ex, specs("add", 1, 2)).result) == 3
        time.sleep(0.4)
        assert ex.wait(0.1) == []


def test_spec_that_cannot_be_sent_fails_its_attempt(pool, specs):
    out = run_one(pool, specs("add", threading.Lock(), 1))
    assert (out.status, out.retryable) == ("failed", False)
    assert out.error.startswith("the attempt cannot be sent to a worker: cannot pickle")
    assert pool.free_slots() == 2


def test_unknown_node_fails(pool, specs):
    spec = specs("add", 1, 2)
    spec = AttemptSpec(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                          "node": "nope"})
    out = run_one(pool, spec)
    assert (out.status, out.retryable) == ("failed", False)
    assert "nope" in out.error


DRIVER = textwrap.dedent("""
    import json, sys, time
    from legato import pipeline, task
    from legato.executors.interface import AttemptSpec
    from legato.executors.local import LocalExecutor
    from legato.results import ResultStore

    @task
    def hang():
        time.sleep(60)

    @pipeline
    def p():
        hang()

    root = sys.argv[1]
    ex = LocalExecutor(workers=2, results=ResultStore(root + "/results"))
    ex.start({"p": p})
    ex.submit(AttemptSpec(run_id="r", pipeline="p", node="hang", task_key="hang", map_index=None,
                          attempt=1, args=(), kwargs=(), params={}, partition=None,
                          result_key="r/hang", log_path=root + "/hang.log", timeout=None))
    print(json.dumps([ex.zygote_pid, *ex.worker_pids]), flush=True)
    time.sleep(60)
""")


def test_sigkilled_driver_leaves_no_process_behind(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 3 and all(not gone(p) for p in pids)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 5
        while not all(gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(gone(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
