"""run_attempt: inputs, context, outcomes for every way a task can end, output capture."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest

from legato import Context, FailNow, Skip, pipeline, task
from legato.executors.interface import AttemptSpec, Input, Stored, StoredItem, StoredList, Value
from legato.executors.worker import run_attempt
from legato.results import ResultStore


@task
def add(a, b=0):
    return a + b


@task
def with_ctx(ctx: Context, x):
    ctx.log.info("got %s", x)
    return {"run": ctx.run_id, "task": ctx.task, "attempt": ctx.attempt, "x": x,
            "partition": ctx.partition, "params": dict(ctx.params), "map_index": ctx.map_index}


@task(retries=2)
def flaky():
    raise ValueError("bad row 12\nsecond line")


@task(retries=2)
def give_up():
    raise FailNow("no point")


@task(retries=3, retry_on=KeyError)
def wrong_kind():
    raise ValueError("not a KeyError")


@task
def skipper():
    raise Skip("nothing to do today")


@task
def exits():
    sys.exit(4)


@task
def interrupted():
    raise KeyboardInterrupt


@task
def unpicklable():
    return threading.Lock()


@task
def not_a_list():
    return {"a": 1}


@task
def a_list():
    return [10, 20, 30]


@task
def frames():
    import pandas as pd

    return [pd.DataFrame({"a": [1, 2]}), 7]


@task
def long_error():
    raise RuntimeError("x" * 2000)


@task
def loud(tag):
    print(f"print {tag}")
    sys.stderr.write(f"stderr {tag}\n")
    logging.getLogger("user.module").warning("warning %s", tag)
    os.write(1, f"fd1 {tag}\n".encode())
    subprocess.run(["sh", "-c", f"echo child {tag}"], check=True)
    print(f"no newline {tag}", end="")  # flushed at the end of the attempt
    return tag


@task
def chatty(tag, n, barrier):
    for i in range(n):
        print(f"{tag} line {i}")
        if i == 0:
            barrier.wait(5)  # both tasks are surely printing at the same time
    return tag


@pipeline
def suite():
    add(1)
    with_ctx(1)
    flaky()
    give_up()
    wrong_kind()
    skipper()
    exits()
    interrupted()
    unpicklable()
    not_a_list()
    a_list()
    frames()
    long_error()
    loud("x")
    chatty("a", 1, None)


def node_task(node):
    return suite.graph.nodes[node].task


def make_spec(tmp_path, node, args=(), kwargs=(), *, key=None, store_items=False, **extra):
    key = key or node
    def wrap(v):
        return v if isinstance(v, Input.__args__) else Value(v)
    return AttemptSpec(
        run_id="run1", pipeline="suite", node=node, task_key=key,
        map_index=extra.pop("map_index", None), attempt=extra.pop("attempt", 1),
        args=tuple(wrap(a) for a in args),
        kwargs=tuple((k, wrap(v)) for k, v in kwargs), params=extra.pop("params", {}),
        partition=extra.pop("partition", None), result_key=f"run1/{key}",
        log_path=str(tmp_path / "logs" / f"{key}.log"), timeout=None, store_items=store_items,
    )


@pytest.fixture
def results(tmp_path):
    return ResultStore(tmp_path / "results")


def run(tmp_path, results, node, *args, capture="thread", **kw):
    spec = make_spec(tmp_path, node, args, **kw)
    return spec, run_attempt(spec, node_task(node), results, capture=capture, worker="test")


def log_of(spec):
    with open(spec.log_path, encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("capture", ["thread", "fd"])
def test_success_stores_the_result(tmp_path, results, capture):
    _, out = run(tmp_path, results, "add", 1, 2, capture=capture)
    assert out.status == "succeeded"
    assert out.worker == "test"
    assert (out.run_id, out.task_key, out.attempt) == ("run1", "add", 1)
    assert results.get(out.result) == 3


def test_inputs_of_every_kind(tmp_path, results):
    whole = results.put("run0/list", [5, 6, 7])
    items = results.put_items("run0/list", [5, 6, 7])
    one = results.put("run0/one", 100)
    _, out = run(tmp_path, results, "add", Stored(one), StoredItem(whole, 1))
    assert results.get(out.result) == 106
    _, out = run(tmp_path, results, "add", StoredItem(whole, 2, items[0]), kwargs=[("b", 1)])
    assert results.get(out.result) == 6  # the item's own ref wins over the index
    _, out = run(tmp_path, results, "add", StoredList(items), [1])
    assert results.get(out.result) == [5, 6, 7, 1]


def test_context_is_passed_first(tmp_path, results):
    spec, out = run(tmp_path, results, "with_ctx", "v", key="with_ctx[3]", map_index=3,
                    attempt=2, partition="2024-01-01", params={"p": 1})
    assert out.status == "succeeded", out.error
    assert results.get(out.result) == {
        "run": "run1", "task": "with_ctx[3]", "attempt": 2, "x": "v",
        "partition": "2024-01-01", "params": {"p": 1}, "map_index": 3,
    }
    assert "INFO legato.task.with_ctx[3]: got v" in log_of(spec)


def test_retryable_error(tmp_path, results):
    spec, out = run(tmp_path, results, "flaky")
    assert out.status == "failed"
    assert out.retryable is True
    assert out.error == "ValueError: bad row 12 second line"
    assert out.traceback.startswith("Traceback (most recent call last):")
    assert "in flaky" in out.traceback and "run_attempt" not in out.traceback
    assert out.traceback in log_of(spec)


def test_fail_now_is_not_retryable(tmp_path, results):
    _, out = run(tmp_path, results, "give_up")
    assert (out.status, out.retryable, out.error) == ("failed", False, "FailNow: no point")


def test_exception_outside_retry_on_is_not_retryable(tmp_path, results):
    _, out = run(tmp_path, results, "wrong_kind")
    assert (out.status, out.retryable) == ("failed", False)
    assert out.error == "ValueError: not a KeyError"


def test_skip(tmp_path, results):
    spec, out = run(tmp_path, results, "skipper")
    assert (out.status, out.error, out.retryable) == ("skipped", "nothing to do today", False)
    assert "skipped: nothing to do today" in log_of(spec)


@pytest.mark.parametrize("node,error", [("exits", "SystemExit: 4"),
                                        ("interrupted", "KeyboardInterrupt")])
def test_base_exceptions_fail_the_attempt_only(tmp_path, results, node, error):
    _, out = run(tmp_path, results, node, capture="fd")
    assert (out.status, out.error) == ("failed", error)


def test_unpicklable_result(tmp_path, results):
    _, out = run(tmp_path, results, "unpicklable")
    assert (out.status, out.retryable) == ("failed", False)
    assert out.error == (
        "result of task 'unpicklable' cannot be stored: cannot pickle '_thread.lock' object"
    )
    assert [names for _, _, names in os.walk(tmp_path / "results") if names] == []


def test_mapped_over_result_must_be_a_list(tmp_path, results):
    _, out = run(tmp_path, results, "not_a_list", store_items=True)
    assert (out.status, out.retryable) == ("failed", False)
    assert out.error == "task 'not_a_list' is mapped over but returned dict, not a list"


def test_mapped_over_small_list_is_read_whole(tmp_path, results):
    # Plain values in a list of modest size: one file, each element read from it.
    _, out = run(tmp_path, results, "a_list", store_items=True)
    assert out.status == "succeeded"
    assert out.item_count == 3
    assert out.item_refs is None
    assert results.get(out.result) == [10, 20, 30]
    assert [names for _, _, names in os.walk(tmp_path / "results") if names] == [["a_list.pkl"]]
    _, two = run(tmp_path, results, "add", StoredItem(out.result, 1), 0)
    assert results.get(two.result) == 20


def test_mapped_over_result_stores_items_of_their_own_format(tmp_path, results):
    # A frame among the elements keeps its own exact format: items are stored one by one.
    pd = pytest.importorskip("pandas")
    _, out = run(tmp_path, results, "frames", store_items=True)
    assert out.status == "succeeded", out.error
    assert [r.format for r in out.item_refs] == ["parquet-pandas", "pickle"]
    assert results.get(out.item_refs[0]).equals(pd.DataFrame({"a": [1, 2]}))
    assert results.get(out.item_refs[1]) == 7


def test_error_is_one_short_line(tmp_path, results):
    _, out = run(tmp_path, results, "long_error")
    assert len(out.error) <= 500 and "\n" not in out.error
    assert out.error.startswith("RuntimeError: xxx")


def test_missing_input_fails_without_retry(tmp_path, results):
    ref = results.put("run0/gone", 1)
    results.delete(ref)
    _, out = run(tmp_path, results, "add", Stored(ref))
    assert (out.status, out.retryable) == ("failed", False)
    assert out.error.startswith("cannot load the inputs of task 'add': ResultError")


def test_fd_capture_takes_everything_and_restores(tmp_path, results, capfd):
    spec, out = run(tmp_path, results, "loud", "x", capture="fd")
    assert out.status == "succeeded", out.error
    text = log_of(spec)
    for line in ("print x", "stderr x", "fd1 x", "child x", "no newline x"):
        assert line in text
    assert "WARNING user.module: warning x" in text
    print("after the attempt")
    captured = capfd.readouterr()
    assert "after the attempt" in captured.out
    assert "print x" not in captured.out + captured.err


def test_thread_capture_keeps_concurrent_attempts_apart(tmp_path, results, capsys):
    barrier = threading.Barrier(2)
    specs = [make_spec(tmp_path, "chatty", (tag, 50, barrier), key=f"chatty_{tag}")
             for tag in ("a", "b")]
    outs = {}

    def go(spec):
        outs[spec.task_key] = run_attempt(spec, node_task("chatty"), results, capture="thread")

    threads = [threading.Thread(target=go, args=(s,)) for s in specs]
    for t in threads:
        t.start()
    print("main thread output")
    for t in threads:
        t.join()
    assert all(o.status == "succeeded" for o in outs.values())
    for spec, tag in zip(specs, "ab", strict=True):
        lines = log_of(spec).splitlines()
        assert lines == [f"{tag} line {i}" for i in range(50)]
    assert "main thread output" in capsys.readouterr().out
