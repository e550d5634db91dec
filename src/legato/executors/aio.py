"""Async tasks in a worker process: a batch of an ``async def`` task's attempts runs on the
worker's event loop (``executors/event_loop.py``), up to the task's ``concurrency`` at once.

This is what an I/O-bound fan-out needs (thousands of HTTP fetches through ``.map()``): a
worker slot per request would leave the CPUs idle, waiting on the network. Each coroutine
is still an attempt of its own:

* its timeout (``@task(timeout=...)``) cancels that coroutine alone, which is reported
  ``timeout`` and retried by its own policy; the driver kills the worker only as a last
  resort, for a loop blocked by a coroutine that never awaits (``engine/batching.py``);
* what it prints and logs (``print``, ``ctx.log``, the ``logging`` module) goes to its own
  log, told apart by the coroutine's context (a ``ContextVar``); output written straight to
  the file descriptors (a child process) cannot be told apart, and goes to the log of the
  batch's first attempt, under a line that says so;
* its inputs are loaded and its result stored as a sync attempt's are (small results share
  a file, as in ``executors/batch.py``).

A worker that dies in the middle loses the whole batch's outcomes, as a sync batch does: the
driver runs each attempt again on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from legato.definitions.task import Task
from legato.executors import event_loop
from legato.executors.batch import _open_scratch, _Parts
from legato.executors.capture import LogWatch, _FdState, _write_all, capture_fds, open_log
from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.worker import (
    _Attempt,
    _flush_spans,
    finish_call,
    masked,
    one_line,
    prepare_call,
    raised,
)
from legato.results.result_store import ResultStore

_FD_NOTE = b"\n--- written to the file descriptors by the batch's tasks, not told apart ---\n"

_current: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "legato_async_log", default=None
)


class _Streams:
    """Stands in for sys.stdout and sys.stderr (and the root log handler's stream) during an
    async batch: each write goes to the log of the coroutine that writes it."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        target = _current.get()
        return (self.fallback if target is None else target).write(text)

    def flush(self) -> None:
        if _current.get() is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)


def run_async_batch(
    specs: Sequence[AttemptSpec],
    tasks: Sequence[Task],
    results: ResultStore,
    *,
    worker: str | None,
    between: Callable[[], None] | None = None,
) -> list[AttemptOutcome]:
    """Run ``specs`` (attempts of async tasks) on one event loop, each task's
    ``concurrency`` at once; their outcomes, in order. Never raises."""
    try:
        scratch = _open_scratch(os.path.dirname(specs[0].log_path))
    except BaseException as exc:
        error = f"cannot open the log file: {one_line(exc)}"
        return [_Attempt(s, worker, None).failed(error, True, log=False) for s in specs]
    atts = [_Attempt(s, worker, io.StringIO()) for s in specs]
    outcomes: list[AttemptOutcome] = []
    parts = _Parts(results, outcomes)
    try:
        with capture_fds(scratch, LogWatch(scratch, 0, specs[0].max_log_bytes)) as stream:
            ended = _run_loop(atts, tasks, results, stream)
            for att, task, end in zip(atts, tasks, ended, strict=True):
                outcomes.append(_outcome(att, task, end, results, parts))
                if between is not None:
                    between()
    except BaseException as exc:  # the capture or the loop failed: not the tasks' fault
        error = f"cannot run the batch: {one_line(exc)}"
        outcomes.extend(a.failed(error, True, log=False) for a in atts[len(outcomes):])
    finally:
        parts.flush()
    try:
        for i, att in enumerate(atts):
            outcomes[i] = _keep_log(att, outcomes[i], scratch if i == 0 else -1)
    except BaseException as exc:  # masking failed: the outcomes matter more than the logs
        error = f"cannot write the log: {one_line(exc)}"
        outcomes = [a.failed(error, True, log=False) for a in atts]
    finally:
        os.close(scratch)
    if any(s.traceparent for s in specs):
        _flush_spans()
    return outcomes


@dataclass(frozen=True)
class _Ended:
    """What became of a coroutine: it returned ``value`` (its context's metadata in
    ``added``), raised ``value``, or ran past ``value`` seconds."""

    kind: str  # "value" | "raised" | "timeout"
    value: Any
    added: dict[str, Any]


def _run_loop(
    atts: list[_Attempt], tasks: Sequence[Task], results: ResultStore, stream: TextIO
) -> list[_Ended | AttemptOutcome]:
    router: Any = _Streams(stream)
    saved = _FdState.handler.stream
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = router
    _FdState.handler.setStream(router)
    try:
        return event_loop.run(_gather(atts, tasks, results))
    finally:
        sys.stdout, sys.stderr = old
        _FdState.handler.setStream(saved)


async def _gather(
    atts: list[_Attempt], tasks: Sequence[Task], results: ResultStore
) -> list[_Ended | AttemptOutcome]:
    limits: dict[int, asyncio.Semaphore] = {}
    for task in tasks:
        limits.setdefault(id(task.fn), asyncio.Semaphore(task.concurrency))

    async def one(att: _Attempt, task: Task) -> _Ended | AttemptOutcome:
        async with limits[id(task.fn)]:
            assert isinstance(att.log, io.StringIO)
            _current.set(att.log)  # in this coroutine's own context (see below)
            called = prepare_call(att, task, results)
            if isinstance(called, AttemptOutcome):
                return called
            args, kwargs, added = called
            try:
                async with asyncio.timeout(task.timeout) as limit:
                    return _Ended("value", await task.fn(*args, **kwargs), added)
            except BaseException as exc:  # SystemExit too: the worker lives on
                if isinstance(exc, TimeoutError) and limit.expired():
                    return _Ended("timeout", task.timeout, added)
                return _Ended("raised", exc, added)

    # gather runs each coroutine in an asyncio task, with a copy of the context of its own.
    return list(await asyncio.gather(*(one(a, t) for a, t in zip(atts, tasks, strict=True))))


def _outcome(
    att: _Attempt,
    task: Task,
    end: _Ended | AttemptOutcome,
    results: ResultStore,
    parts: _Parts,
) -> AttemptOutcome:
    if isinstance(end, AttemptOutcome):
        return end
    if end.kind == "timeout":
        error = f"timed out after {end.value:g}s"
        att.write(error)
        return att.outcome("timeout", error=error, retryable=True)
    if end.kind == "raised":
        return raised(att, task, end.value)
    return finish_call(att, task, end.value, results, parts.store, end.added)


def _keep_log(att: _Attempt, out: AttemptOutcome, scratch: int) -> AttemptOutcome:
    """Write what the attempt printed and logged to its own log file (secrets masked,
    capped); with ``scratch`` (the first attempt's), what was written to the file
    descriptors too."""
    buffer = att.log
    data = buffer.getvalue().encode() if isinstance(buffer, io.StringIO) else b""
    if scratch >= 0:
        size = os.fstat(scratch).st_size
        if size:
            data += _FD_NOTE + os.pread(scratch, size, 0)
    masker = att.masker()
    if data:
        if masker:
            data = masker.mask_bytes(data)
        cap = att.spec.max_log_bytes
        if cap and len(data) > cap:
            data = data[:cap] + f"\n--- log cut at {cap} bytes ---\n".encode()
        try:
            fd = open_log(att.spec.log_path)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        except BaseException as exc:
            out = att.failed(f"cannot write the log: {one_line(exc)}", True, log=False)
    return masked(out, masker) if masker else out
