"""Running a batch of a run's attempts in one worker process, one after another: elements of
mapped nodes, and plain tasks that became ready together (a fan).

One message brings the batch's attempts to the worker and one brings back their outcomes,
so what an element would cost on its own is shared by the batch:

* Output: file descriptors 1 and 2 point at one scratch file (unnamed once opened) for
  the whole batch; it is emptied before each element and copied (secrets masked, capped)
  to the element's own log file only when the element wrote something. Most elements
  print nothing, and get no file: a missing log reads as empty.
* Results: a small value (pickled, at most ``PART_VALUE_MAX`` bytes) is kept with the
  others in one file per batch (``ResultStore.put_parts``), written once the batch has run
  or grown past ``PART_FILE_MAX`` bytes; the outcomes pointing into it are sent after it
  is in place, so the driver never records a result that is not stored. Frames, big
  values and values of tasks producing assets are stored one by one, as always.

A worker that dies in the middle of a batch loses the outcomes of the whole batch: the
driver runs each of its elements again on its own (``executors/pool.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pickle
from collections.abc import Callable, Sequence
from contextlib import suppress
from operator import attrgetter
from typing import Any, TextIO

from legato.definitions.task import Task
from legato.domain.refs import ResultRef
from legato.executors.capture import LogWatch, _write_all, capture_fds, open_log
from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.worker import (
    _Attempt,
    _flush_spans,
    _store,
    end_log,
    masked,
    one_line,
    run_captured,
    store_failed,
)
from legato.results.result_store import ResultStore
from legato.results.serializers import AUTO, PICKLE, format_of
from legato.security.files import open_private

#: A value pickling to more bytes than this is stored in a file of its own.
PART_VALUE_MAX = 64 * 1024
#: A batch's parts are written out once they hold this many bytes (memory stays bounded).
PART_FILE_MAX = 8 * 1024 * 1024
_scratch_names = itertools.count()


class _Parts:
    """The small results of a batch, pickled, waiting to be written in one file."""

    def __init__(self, results: ResultStore, outcomes: list[AttemptOutcome]) -> None:
        self.results = results
        self.outcomes = outcomes  # the batch's, in order: parts fill in those waiting
        self.blobs: list[bytes] = []
        self.waiting: list[int] = []  # index in outcomes of each blob's attempt
        self.atts: list[_Attempt] = []
        self.size = 0
        self.dirty = False  # the batch's scratch file holds an element's output

    def store(self, att: _Attempt, value: Any, results: ResultStore, fmt: str) -> AttemptOutcome:
        """``worker._store``, but a small plain value waits to go into the batch's file."""
        if (
            att.spec.store_items
            or fmt not in (AUTO, PICKLE)
            or format_of(value) != PICKLE
        ):
            return _store(att, value, results, fmt)
        try:
            data = pickle.dumps(value, protocol=5)
        except Exception:
            return _store(att, value, results, fmt)  # it says why, as for any result
        if len(data) > PART_VALUE_MAX:
            try:
                ref = results.put_pickled(att.spec.result_key, data)
            except BaseException as exc:
                return store_failed(att, exc)
            return att.outcome("succeeded", result=ref)
        self.blobs.append(data)
        self.waiting.append(len(self.outcomes))
        self.atts.append(att)
        self.size += len(data)
        return att.outcome("succeeded")  # its ref once the file is written (flush)

    def flush(self) -> None:
        """Write the parts held into one file and give their outcomes their refs."""
        if not self.blobs:
            return
        first = self.atts[0].spec
        try:
            refs = self.results.put_parts(f"{first.result_key}.a{first.attempt}", self.blobs)
        except BaseException as exc:
            for i, att in zip(self.waiting, self.atts, strict=True):
                self.outcomes[i] = store_failed(att, exc)
        else:
            for i, ref in zip(self.waiting, refs, strict=True):
                self.outcomes[i] = _with_result(self.outcomes[i], ref)
        self.blobs, self.waiting, self.atts, self.size = [], [], [], 0


def run_batch(
    specs: Sequence[AttemptSpec],
    tasks: Sequence[Task],
    results: ResultStore,
    *,
    worker: str | None,
    between: Callable[[], None] | None = None,
) -> list[AttemptOutcome]:
    """Run each attempt of ``specs`` (of one run; ``tasks``: each one's task) in turn, output
    captured at the level of file descriptors (once for the batch); their outcomes, in
    order; ``between`` is called after each. Never raises."""
    outcomes: list[AttemptOutcome] = []
    try:
        scratch = _open_scratch(os.path.dirname(specs[0].log_path))
    except BaseException as exc:
        error = f"cannot open the log file: {one_line(exc)}"
        return [_Attempt(s, worker, None).failed(error, True, log=False) for s in specs]
    parts = _Parts(results, outcomes)
    watch = LogWatch(scratch, 0, specs[0].max_log_bytes)
    try:
        with capture_fds(scratch, watch) as stream:
            for spec, task in zip(specs, tasks, strict=True):
                outcomes.append(_element(spec, task, results, worker, scratch, stream, watch,
                                         parts))
                if between is not None:
                    between()
                if parts.size >= PART_FILE_MAX:
                    parts.flush()
    except BaseException as exc:  # the capture itself failed: not the tasks' fault
        error = f"cannot capture the output: {one_line(exc)}"
        done = len(outcomes)
        outcomes.extend(_Attempt(s, worker, None).failed(error, True, log=False)
                        for s in specs[done:])
    finally:
        parts.flush()
        os.close(scratch)
    return outcomes


def _element(
    spec: AttemptSpec,
    task: Task,
    results: ResultStore,
    worker: str | None,
    scratch: int,
    stream: TextIO,
    watch: LogWatch,
    parts: _Parts,
) -> AttemptOutcome:
    """One element of a batch, its output captured to ``scratch`` (emptied for it)."""
    att = _Attempt(spec, worker, None)
    try:
        if parts.dirty:  # the element before wrote to the scratch file
            os.ftruncate(scratch, 0)
            parts.dirty = False
    except BaseException as exc:
        return att.failed(f"cannot open the log file: {one_line(exc)}", True, log=False)
    watch.restart()
    out = run_captured(att, task, results, stream, parts.store)
    with suppress(Exception):
        stream.flush()  # its last line, if it did not end it, is its own
    try:
        wrote = os.fstat(scratch).st_size > 0
    except OSError:
        wrote = True
    parts.dirty = wrote
    if wrote or watch.error is not None:
        out = end_log(att, out, watch)
    elif spec.traceparent:
        _flush_spans()
    masker = att.masker()
    if wrote:
        try:
            _keep_log(scratch, spec.log_path, masker.mask_bytes if masker else None)
        except BaseException as exc:
            out = att.failed(f"cannot write the log: {one_line(exc)}", True, log=False)
    return masked(out, masker) if masker else out


_OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(AttemptOutcome))
_outcome_values = attrgetter(*_OUTCOME_FIELDS)
_RESULT = _OUTCOME_FIELDS.index("result")


def _with_result(out: AttemptOutcome, ref: ResultRef) -> AttemptOutcome:
    """``dataclasses.replace(out, result=ref)``, quicker (hundreds of times a batch)."""
    values = list(_outcome_values(out))
    values[_RESULT] = ref
    return AttemptOutcome(*values)


def _open_scratch(folder: str) -> int:
    """A file in ``folder`` for the batch's output, removed from the folder at once: nothing
    is left behind whatever becomes of the worker."""
    path = os.path.join(folder, f".batch.{os.getpid()}.{next(_scratch_names)}.log")
    fd = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.unlink(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _keep_log(scratch: int, path: str, mask: Any) -> None:
    """Append what an element wrote to the scratch file to its own log, if anything."""
    size = os.fstat(scratch).st_size
    if not size:
        return
    data = os.pread(scratch, size, 0)
    if mask is not None:
        data = mask(data)
    fd = open_log(path)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
