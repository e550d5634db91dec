"""Running one attempt: load its inputs, call the task with its output captured, store the result.

``run_attempt`` is shared by worker processes and by the threads of in-process attempts. It
never raises: whatever happens becomes an AttemptOutcome, so a worker can go on with the
next attempt.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import pickle
import traceback
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, suppress
from typing import Any, TextIO

from legato.definitions.context import Context
from legato.definitions.errors import FailNow, Skip
from legato.definitions.secret_param import SealedParam
from legato.definitions.task import Task
from legato.domain.materializations import ASSET_METADATA
from legato.executors.asset_metadata import describe, describe_masked
from legato.executors.capture import (
    LogWatch,
    capture_fds,
    capture_thread,
    finish_log,
    mask_log,
    open_log,
)
from legato.executors.checking import masked_results, run_checks
from legato.executors.cursor_access import TaskCursors
from legato.executors.interface import (
    LOG_NOTE,
    AttemptOutcome,
    AttemptSpec,
    Input,
    ResultRef,
    Stored,
    StoredItem,
    StoredList,
    Value,
)
from legato.executors.scratch_log import ScratchLogs
from legato.executors.secret_access import TaskSecrets
from legato.resources.kind import ResourceError
from legato.resources.opened import OpenResources
from legato.results.result_errors import ResultError
from legato.results.result_store import ResultStore
from legato.results.serializers import AUTO, NONE, PICKLE, format_of
from legato.security.masking import Masker

ERROR_LIMIT = 500  # characters of the one-line error kept in an outcome
_NO_MASK = Masker()
_task_loggers_ready = False


def one_line(exc: BaseException) -> str:
    """``"ExcType: message"`` on one line, cut to ERROR_LIMIT characters."""
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= ERROR_LIMIT else line[: ERROR_LIMIT - 1] + "…"


def _format_tb(exc: BaseException, skip_first: bool) -> str:
    tb = exc.__traceback__
    if skip_first and tb is not None:
        tb = tb.tb_next  # drop the frame of run_attempt itself: users care about theirs
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _task_logger(task_key: str) -> logging.Logger:
    global _task_loggers_ready
    if not _task_loggers_ready:
        # ctx.log.info() must reach the attempt log although the root logger is at WARNING
        # by default. Setting the level once on the parent (not on each task's logger)
        # keeps it cheap: setLevel clears the level cache of every logger.
        parent = logging.getLogger("legato.task")
        if parent.level == logging.NOTSET:
            parent.setLevel(logging.INFO)
        _task_loggers_ready = True
    return logging.getLogger(f"legato.task.{task_key}")


def _load(inp: Input, results: ResultStore) -> Any:
    if isinstance(inp, Value):
        return inp.value
    if isinstance(inp, Stored):
        return results.get(inp.ref)
    if isinstance(inp, StoredItem):
        if inp.item is not None:
            return results.get(inp.item)
        return _whole_list(inp.ref, results)[inp.index]
    if isinstance(inp, StoredList):
        return results.get_many(inp.refs)
    raise TypeError(f"unknown input {inp!r}")


# The list a mapped node iterates over, as last loaded in this process: each of its elements
# is read from it, and a worker runs many elements of one list in a row (see _store: small
# lists of plain values are not stored item by item).
_held_list: tuple[tuple[Any, ...], Any] | None = None


def _whole_list(ref: ResultRef, results: ResultStore) -> Any:
    global _held_list
    held = _held_list
    if held is not None and held[0][-1] is ref:
        return held[1]  # the same ref object: the elements of one batch share it
    uri = ref.uri or ""
    try:
        # A result is replaced, never changed in place: a new inode or size is a new result.
        st = os.stat(uri) if uri.startswith("/") else None
        key: tuple[Any, ...] = (uri,) if st is None else (uri, st.st_ino, st.st_mtime_ns)
    except OSError:
        key = ()
    if key and held is not None and held[0][:-1] == key:
        _held_list = ((*key, ref), held[1])
        return held[1]
    value = results.get(ref)
    if key:
        # The ref object last (kept alive here, so its identity is not reused).
        _held_list = ((*key, ref), value)
    return value


class _Attempt:
    """The state of one attempt while it runs; builds its outcome."""

    def __init__(self, spec: AttemptSpec, worker: str | None, log: TextIO | None) -> None:
        self.spec = spec
        self.worker = worker
        self.log = log
        self.secrets: Mapping[str, str] = (
            {}
            if spec.secrets is None
            else TaskSecrets(spec.secrets, spec.run_id, spec.task_key, spec.attempt, worker=worker)
        )
        # A secret in a resource's settings is read as ctx.secrets reads it: audited, as
        # this attempt's read.
        self.resources = OpenResources(
            spec.resources,
            secret=self.secrets.__getitem__ if isinstance(self.secrets, TaskSecrets) else None,
        )

    def masker(self) -> Masker:
        """What masks the secret values this attempt was handed, those of the resources it
        used included (opened by an earlier attempt, they were not read by this one)."""
        if not isinstance(self.secrets, TaskSecrets) and self.spec.resources is None:
            return _NO_MASK  # nothing secret was handed to it (most tasks)
        mine = self.secrets.masker() if isinstance(self.secrets, TaskSecrets) else Masker()
        return mine | Masker.of(self.resources.secret_values())

    def write(self, text: str) -> None:
        if self.log is not None:
            with suppress(Exception):
                self.log.write(text if text.endswith("\n") else text + "\n")
                self.log.flush()

    def outcome(self, status: str, **fields: Any) -> AttemptOutcome:
        s = self.spec
        return AttemptOutcome(
            run_id=s.run_id,
            task_key=s.task_key,
            attempt=s.attempt,
            status=status,
            worker=self.worker,
            **fields,
        )

    def failed(
        self, error: str, retryable: bool, tb: str | None = None, log: bool = True
    ) -> AttemptOutcome:
        if log:
            self.write(tb or error)
        return self.outcome("failed", error=error, traceback=tb, retryable=retryable)


def run_attempt(
    spec: AttemptSpec,
    task: Task,
    results: ResultStore,
    *,
    capture: str = "fd",
    worker: str | None = None,
    logs: ScratchLogs | None = None,
) -> AttemptOutcome:
    """Run one attempt of ``task`` and return its outcome; never raises.

    ``capture`` is "fd" in a worker process (file descriptors 1 and 2 are redirected) or
    "thread" in a thread of a process running other things. ``worker`` labels the outcome.
    ``logs``: the worker process's scratch log (with "fd"), so that an attempt printing
    nothing makes no log file (see executors/scratch_log.py).
    """
    if capture not in ("fd", "thread"):
        raise ValueError(f"capture must be 'fd' or 'thread', not {capture!r}")
    att = _Attempt(spec, worker, None)
    # A log that exists already (notes of the driver) is appended to, as it is.
    lazy = logs is not None and capture == "fd" and not os.path.exists(spec.log_path)
    try:
        fd = _open_lazily(logs, spec.log_path) if lazy and logs is not None else -1
        if fd < 0:
            lazy = False
            fd = open_log(spec.log_path)
    except BaseException as exc:
        return att.failed(f"cannot open the log file: {one_line(exc)}", True, log=False)
    try:
        out = run_logged(att, task, results, capture, fd, _store)
        if lazy and logs is not None:
            try:
                logs.end()  # the log gets its name, if it holds anything
            except BaseException as exc:
                out = att.failed(f"cannot write the log file: {one_line(exc)}", True, log=False)
        masker = att.masker()
        try:
            if masker:
                mask_log(fd, spec.log_path, masker)
        except BaseException as exc:
            out = att.failed(
                f"cannot mask the secrets in the log: {one_line(exc)}", True, log=False
            )
    finally:
        if not lazy:
            os.close(fd)  # a scratch file's descriptor is its ScratchLogs'
    if masker:
        out = masked(out, masker)
    return out


#: How a successful attempt's value is stored: ``_store``, or a batch's (executors/batch.py).
StoreFn = Callable[["_Attempt", Any, ResultStore, str], AttemptOutcome]


def run_logged(
    att: _Attempt, task: Task, results: ResultStore, capture: str, fd: int, store: StoreFn
) -> AttemptOutcome:
    """Run the attempt with its output going to the open log ``fd`` (from its current end,
    capped there) and its value stored by ``store``; the outcome carries the log's note
    when it was cut. Secrets are not masked yet: the caller does it. Never raises."""
    spec = att.spec
    try:
        # A retry's log may hold notes already: the cap counts this attempt's output only.
        watch = LogWatch(fd, os.fstat(fd).st_size, spec.max_log_bytes)
    except BaseException as exc:
        return att.failed(f"cannot open the log file: {one_line(exc)}", True, log=False)
    try:
        ctx: AbstractContextManager[TextIO] = (
            capture_fds(fd, watch) if capture == "fd" else capture_thread(fd, watch)
        )
        with ctx as stream:
            out = run_captured(att, task, results, stream, store)
    except BaseException as exc:  # the capture itself failed: not the task's fault
        out = att.failed(f"cannot capture the output: {one_line(exc)}", True, log=False)
    return end_log(att, out, watch)


def run_captured(
    att: _Attempt, task: Task, results: ResultStore, stream: TextIO, store: StoreFn
) -> AttemptOutcome:
    """Run the attempt, its output already captured to ``stream``."""
    att.log = stream
    if att.spec.traceparent:
        return _traced(att, task, results, att.spec.traceparent, store)
    return _run(att, task, results, store)


def end_log(att: _Attempt, out: AttemptOutcome, watch: LogWatch) -> AttemptOutcome:
    """``out`` once the attempt's spans are sent and its log capped; with the log's note
    when it was cut."""
    if att.spec.traceparent:
        _flush_spans()
    try:
        note = finish_log(watch)
    except BaseException:
        note = None  # the log is as it was written; the outcome matters more
    if note is not None:
        out = dataclasses.replace(out, extra={**out.extra, LOG_NOTE: note})
    return out


def _open_lazily(logs: ScratchLogs, log_path: str) -> int:
    """The worker's scratch file for the attempt's log, or -1 when none can be made."""
    try:
        return logs.begin(log_path)
    except OSError:
        return -1


def _traced(
    att: _Attempt, task: Task, results: ResultStore, traceparent: str, store: StoreFn
) -> AttemptOutcome:
    """``_run`` under the attempt's span, so that the task's own spans nest under it."""
    from legato.observability.tracing import attempt_context

    with attempt_context(traceparent):
        return _run(att, task, results, store)


def _flush_spans() -> None:
    # Before the outcome leaves: a worker may be recycled (or os._exit) right after it, and
    # its spans would be lost with it. An exporter that fails must not fail the attempt.
    from legato.observability.tracing import flush

    try:
        flush()
    except Exception:
        logging.getLogger("legato.tracing").warning("cannot export spans", exc_info=True)


def masked(out: AttemptOutcome, masker: Masker) -> AttemptOutcome:
    """``out`` with the secret values ``masker`` knows masked in its error, traceback and
    the metadata of its output and its check results."""
    extra = out.extra
    if ASSET_METADATA in extra:
        extra = {**extra, ASSET_METADATA: describe_masked(extra[ASSET_METADATA], masker)}
    return dataclasses.replace(
        out,
        error=None if out.error is None else masker.mask_cut(out.error),
        traceback=None if out.traceback is None else masker.mask(out.traceback),
        extra=extra,
        checks=masked_results(out.checks, masker.mask_cut),
    )


def _run(att: _Attempt, task: Task, results: ResultStore, store: StoreFn) -> AttemptOutcome:
    called = prepare_call(att, task, results)
    if isinstance(called, AttemptOutcome):
        return called
    args, kwargs, added = called
    try:
        value = task.fn(*args, **kwargs)
        if inspect.iscoroutine(value):  # an async def task's attempt, on its own
            from legato.executors import event_loop

            value = event_loop.run(value)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the worker lives on
        return raised(att, task, exc)
    del args, kwargs
    return finish_call(att, task, value, results, store, added)


#: A task's call, ready: its positional and keyword arguments, and the metadata its
#: context collects (``ctx.add_metadata``).
Call = tuple[list[Any], dict[str, Any], dict[str, Any]]


def prepare_call(att: _Attempt, task: Task, results: ResultStore) -> Call | AttemptOutcome:
    """The attempt's arguments, loaded and with its context and resources, or the outcome
    of failing to get them."""
    spec = att.spec
    key = spec.task_key
    try:
        args = [_reveal(att, _load(a, results)) for a in spec.args]
        kwargs = {name: _reveal(att, _load(a, results)) for name, a in spec.kwargs}
        params = (
            {k: _reveal(att, v) for k, v in spec.params.items()}
            if task.context_arg is not None
            else spec.params
        )
    except BaseException as exc:
        # A missing or unreadable upstream result will not come back by retrying.
        return att.failed(
            f"cannot load the inputs of task {key!r}: {one_line(exc)}",
            retryable=not isinstance(exc, ResultError),
            tb=_format_tb(exc, False),
        )
    for param, name in spec.resource_args:
        try:
            kwargs[param] = att.resources[name]
        except BaseException as exc:
            # A resource declared wrongly stays so; one that cannot connect may come back.
            return att.failed(
                f"cannot open resource {name!r} for task {key!r}: {one_line(exc)}",
                retryable=not isinstance(exc, ResourceError | KeyError),
                tb=_format_tb(exc, False),
            )
    log = _task_logger(key)
    added: dict[str, Any] = {}
    if task.context_arg is not None:
        ctx = Context(
            run_id=spec.run_id,
            pipeline=spec.pipeline,
            task=key,
            attempt=spec.attempt,
            partition=spec.partition,
            params=params,
            log=log,
            map_index=spec.map_index,
            partition_keys=dict(spec.partition_dims),
            window_start=spec.window[0] if spec.window else None,
            window_end=spec.window[1] if spec.window else None,
            secrets=att.secrets,
            resources=att.resources,
            added_metadata=added,
            **_cursors(spec),
        )
        args.insert(0, ctx)
    return args, kwargs, added


def raised(att: _Attempt, task: Task, exc: BaseException) -> AttemptOutcome:
    """The outcome of a task that raised ``exc``: skipped, failed for good, or failed."""
    if isinstance(exc, Skip):
        reason = " ".join(str(exc).split()) or None
        att.write(f"skipped: {reason}" if reason else "skipped")
        return att.outcome("skipped", error=reason, retryable=False)
    if isinstance(exc, FailNow):
        return att.failed(one_line(exc), False, _format_tb(exc, True))
    return att.failed(one_line(exc), task.retry.retries_error(exc), _format_tb(exc, True))


def finish_call(
    att: _Attempt,
    task: Task,
    value: Any,
    results: ResultStore,
    store: StoreFn,
    added: dict[str, Any],
) -> AttemptOutcome:
    """The outcome of a task that returned ``value``: stored, described, checked."""
    out = store(att, value, results, task.result_format)
    if out.status != "succeeded":
        return out
    if task.produces:
        out = _with_metadata(out, value, results, added)
    if task.checks:
        out = _checked(att, task, value, out, results)
    return out


def _with_metadata(
    out: AttemptOutcome, value: Any, results: ResultStore, added: dict[str, Any]
) -> AttemptOutcome:
    """``out`` carrying the metadata of ``value`` for the assets the task produces (secrets
    are masked in it with the error's, once the attempt is over: see ``_masked``)."""
    size = None if out.result is None else results.stored_size(out.result)
    metadata = describe(value, size, added)
    return dataclasses.replace(out, extra={**out.extra, ASSET_METADATA: metadata})


def _checked(
    att: _Attempt, task: Task, value: Any, out: AttemptOutcome, results: ResultStore
) -> AttemptOutcome:
    """``out`` with the task's checks evaluated on ``value``; failed when one blocks."""
    checked = run_checks(
        task, value, att.resources.__getitem__, related=att.spec.related,
        read=results.get_columns,
    )
    for r in checked.results:
        counted = "" if r["failed_count"] is None else f" ({r['failed_count']} failing)"
        att.write(f"check {r['name']} [{r['severity']}]: {r['outcome']}{counted}: {r['message']}")
    if checked.blocked is None:
        return dataclasses.replace(out, checks=checked.results)
    # Not retryable: the same code on the same inputs gives the same data.
    failed = att.failed(checked.blocked, False)
    return dataclasses.replace(failed, checks=checked.results)


def _cursors(spec: AttemptSpec) -> dict[str, Any]:
    """``ctx.cursors`` of the attempt, when it knows the store its run is recorded in."""
    if spec.secrets is None:
        return {}
    return {"cursors": TaskCursors(spec.secrets.store_url, spec.pipeline, spec.run_id,
                                   spec.partition)}  # fmt: skip


def _reveal(att: _Attempt, value: Any) -> Any:
    """``value``, or for a secret param's placeholder the param's value, opened here."""
    if not isinstance(value, SealedParam):
        return value
    if not isinstance(att.secrets, TaskSecrets):
        raise KeyError(f"secret param {value.name!r}: this attempt has no access to secrets")
    return att.secrets.param(value.name)


def _store(att: _Attempt, value: Any, results: ResultStore, fmt: str) -> AttemptOutcome:
    spec = att.spec
    key = spec.task_key
    if spec.store_items and not isinstance(value, list | tuple):
        return att.failed(
            f"task {key!r} is mapped over but returned {type(value).__name__}, not a list",
            retryable=False,
        )
    ref: ResultRef | None = None
    try:
        items = None
        if spec.store_items:
            ref, whole = _put_list(spec.result_key, value, results)
            if not whole or fmt not in (AUTO, PICKLE) or any(
                format_of(v) not in (PICKLE, NONE) for v in value
            ):
                # The format is asked for each element (frames stay exact); a big list is
                # not read whole by each worker for each of its elements.
                items = results.put_items(spec.result_key, value, fmt)
        else:
            ref = results.put(spec.result_key, value, fmt)
    except BaseException as exc:
        if ref is not None:
            with suppress(Exception):
                results.delete(ref)  # all or nothing: no result without its items
        return store_failed(att, exc)
    return att.outcome(
        "succeeded",
        result=ref,
        item_refs=items,
        item_count=len(value) if spec.store_items else None,
    )


#: A list mapped over that pickles to at most this many bytes is read whole by the workers
#: (once each, see _whole_list) rather than stored element by element.
WHOLE_LIST_MAX = 64 * 1024 * 1024


def _put_list(key: str, value: Any, results: ResultStore) -> tuple[ResultRef, bool]:
    """Store a list that is mapped over (pickled, whatever its elements); True when it is
    small enough for its elements to be read from it."""
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception:  # the store says why, as for any result it cannot hold
        return results.put(key, value, PICKLE), False
    return results.put_pickled(key, data), len(data) <= WHOLE_LIST_MAX


def store_failed(att: _Attempt, exc: BaseException) -> AttemptOutcome:
    """The outcome of an attempt whose value could not be stored."""
    key = att.spec.task_key
    if isinstance(exc, ResultError):
        return att.failed(
            f"result of task {key!r} cannot be stored: {exc.reason}", False,
            _format_tb(exc, False),
        )
    # An I/O error (disk full, network) may well pass: let the retry policy decide.
    return att.failed(
        f"cannot store the result of task {key!r}: {one_line(exc)}", True,
        _format_tb(exc, False),
    )
