"""The executor interface and the messages that cross it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from legato.config import DEFAULT_MAX_LOG_BYTES
from legato.domain.pickling import by_position
from legato.domain.refs import ResultRef

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.resources.opened import Declared


# Inputs of an attempt, resolved by the driver from the graph and the run's state.
@by_position
@dataclass(frozen=True, slots=True)
class Value:
    """A literal or param value, passed as is."""

    value: Any


@by_position
@dataclass(frozen=True, slots=True)
class Stored:
    """A stored upstream result, loaded by the worker."""

    ref: ResultRef


@by_position
@by_position
@dataclass(frozen=True, slots=True)
class StoredItem:
    """Element ``index`` of a stored list result (the input of one mapped task run).

    ``item`` is the element's own stored ref when the upstream stored its items separately.
    """

    ref: ResultRef
    index: int
    item: ResultRef | None = None


@by_position
@by_position
@dataclass(frozen=True, slots=True)
class StoredList:
    """The collected results of a mapped node, in element order."""

    refs: tuple[ResultRef, ...]


Input = Value | Stored | StoredItem | StoredList


@by_position
@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where a worker finds the secrets its task reads: the store's URL and the key file.

    The keys themselves never travel with an attempt: a worker reads ``LEGATO_SECRET_KEYS``
    from its own environment, else ``key_file`` (which must then exist on its machine).
    """

    store_url: str
    key_file: str | None = None


@by_position
@dataclass(frozen=True, slots=True)
class Related:
    """Where the data of an asset a relationship check compares with is stored: ``ref``, or
    ``problem`` saying why there is none (never materialized...). Resolved by the driver."""

    asset: str
    ref: ResultRef | None = None
    problem: str | None = None


@by_position
@dataclass(frozen=True, slots=True)
class AttemptSpec:
    """Everything a worker needs to run one attempt. Picklable; holds no results in memory."""

    run_id: str
    pipeline: str
    node: str  # node id in the pipeline graph: how the worker finds the task
    task_key: str  # "node" or "node[i]" for a mapped element
    map_index: int | None
    attempt: int  # 1-based
    args: tuple[Input, ...]
    kwargs: tuple[tuple[str, Input], ...]
    params: Mapping[str, Any]
    partition: str | None
    result_key: str  # "<run folder>/<task_key>" (domain/ids.py): where the output is kept
    log_path: str  # file that receives stdout, stderr and logging of the attempt
    timeout: float | None  # enforced by the driver (kill); informative for the worker
    store_items: bool = False  # the result is mapped over: also store each list element
    in_process: bool = False  # run in a thread of the driver instead of a worker process
    # The partition's parts by dimension and its time window (aware datetimes), if any.
    partition_dims: tuple[tuple[str, str], ...] = ()
    window: tuple[datetime, datetime] | None = None
    # The most bytes the attempt's log keeps: its head and its tail ([logs] max_attempt_bytes;
    # 0: no cap).
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    # The code version of the pipeline object the driver holds: the executor runs the task
    # from that load of the code, even after a newer one was loaded (see reload()).
    code_version: str = ""
    # Where ctx.secrets reads from (None: the task has no secrets to read).
    secrets: SecretSource | None = None
    # The attempt's span as a W3C traceparent ("00-<trace id>-<span id>-<flags>"), when the
    # driver traces (legato.observability.tracing): the task's own spans nest under it.
    traceparent: str | None = None
    # The resources of the run's environment, as written (the worker opens those the task
    # uses, once per process), and the task's parameters they fill: (parameter, resource).
    resources: Declared | None = None
    resource_args: tuple[tuple[str, str], ...] = ()
    # The other assets the task's relationship checks read (``legato.engine.related``).
    related: tuple[Related, ...] = ()


#: Key of ``AttemptOutcome.extra`` holding how the attempt's log was cut, when it was.
LOG_NOTE = "log_note"
#: Key of ``AttemptOutcome.extra``, True for an "interrupted" attempt of a batch whose worker
#: died: it did not fail, it may not even have started. It should run again on its own.
BATCH_LOST = "batch_lost"


@by_position
@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What became of an attempt."""

    run_id: str
    task_key: str
    attempt: int
    status: str  # "succeeded" | "failed" | "skipped" | "timeout" | "crashed" | "canceled"
    result: ResultRef | None = None
    item_refs: tuple[ResultRef, ...] | None = None  # when store_items: each element's ref
    item_count: int | None = None  # len() of a list result that is mapped over
    error: str | None = None  # one line, e.g. "ValueError: bad row 12"
    traceback: str | None = None
    retryable: bool = True  # False for FailNow, for exceptions outside retry_on, bad results
    worker: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The task's data-quality checks evaluated on its output, each as CheckOutcome.to_json()
    # gives it (plain data: it crosses processes), "asset" filled in from the task.
    checks: tuple[dict[str, Any], ...] = ()


class Executor(Protocol):
    """Runs attempts somewhere and reports their outcomes."""

    def start(self, pipelines: Mapping[str, Pipeline]) -> None:
        """Get ready to run tasks of these pipelines (spawn workers and so on)."""

    def free_slots(self) -> int:
        """How many more attempts may be submitted right now without waiting."""

    def submit(self, spec: AttemptSpec) -> str:
        """Start the attempt now on a free slot; returns a label of where it runs."""

    def kill(self, run_id: str, task_key: str, attempt: int, status: str, reason: str) -> None:
        """Stop a running attempt; its outcome (``status``, error ``reason``) comes from wait()."""

    def wait(self, timeout: float | None) -> list[AttemptOutcome]:
        """Block until at least one attempt finishes, ``timeout`` seconds pass or ``wake()``."""

    def wake(self) -> None:
        """Make a blocked ``wait()``, or else the next one, return promptly ([] if nothing
        finished). Thread-safe: other threads call it when they have queued work."""

    def reload(self, pipelines: Mapping[str, Pipeline]) -> None:
        """Newly loaded code: run attempts of these pipelines from now on, while attempts of
        runs that started on older code (their spec's ``code_version``) keep that code.
        Thread-safe."""

    def retain(self, versions: Collection[str]) -> None:
        """Only runs on these code versions are in flight: older code may be let go."""

    def shutdown(self) -> None:
        """Stop all workers."""


@runtime_checkable
class Batching(Protocol):
    """An executor that can run many queued attempts of a run on one slot, one message for
    them all: tiny tasks (a map's elements, a fan's) then cost far less than an attempt
    each."""

    def batch_size(self, queued: int, at_once: int = 1) -> int:
        """How many of ``queued`` waiting attempts to send to one free slot (1: one at a
        time); ``at_once``: how many of them the slot runs at the same time (an async
        task's concurrency)."""

    def submit_batch(self, specs: Sequence[AttemptSpec]) -> str:
        """Start these attempts (of one run, whose tasks set no timeout or pool) on one free
        slot, one after another; their outcomes come from wait(), all together.
        Killing one of them stops the others, which are reported "interrupted"; a batch
        whose worker dies reports each of its attempts "interrupted" with ``BATCH_LOST``."""
