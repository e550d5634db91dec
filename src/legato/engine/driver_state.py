"""What a run's driver holds: the run's book, its params and partition, the attempts'
deadlines, the executor and store it works with; built from ``RunDriver``'s arguments.

``RunDriver`` (``engine/driver.py``) is made of this state and of the parts that act on it:
writing a step (``driver_writes``), starting attempts (``driver_dispatch``), taking their
outcomes and retries (``driver_outcomes``) and stopping attempts and the run
(``driver_stops``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.clock import Clock, system_clock
from legato.config import DEFAULT_MAX_LOG_BYTES
from legato.definitions.pipeline import Pipeline
from legato.definitions.secret_param import MASKED, SealedParam
from legato.domain.ids import run_folder
from legato.domain.records import Changes, Progress, RunRecord, TaskRunRecord
from legato.domain.refs import ResultRef
from legato.domain.states import TaskState
from legato.engine import plan
from legato.engine.batching import BatchPolicy
from legato.engine.book import RunBook
from legato.engine.conditions import ConditionChecks
from legato.engine.lineage import RunLineage
from legato.engine.pools import PoolClaims
from legato.executors.interface import Batching, Executor, SecretSource
from legato.store.faces import DriverStore

if TYPE_CHECKING:
    from legato.observability.trace_export import RunSpan, Tracing
    from legato.resources.opened import Declared

ProgressCallback = Callable[[Progress], None]


class DriverState:
    """The state every part of a ``RunDriver`` reads and writes (see ``RunDriver`` for the
    arguments)."""

    def __init__(
        self,
        store: DriverStore,
        pipeline: Pipeline,
        executor: Executor,
        run: RunRecord,
        *,
        owner: str,
        logs_dir: Path,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        clock: Clock = system_clock,
        lease_ttl: float = 15.0,
        cancel_poll: float = 1.0,
        pool_poll: float = 0.5,
        on_progress: ProgressCallback | None = None,
        rng: random.Random | None = None,
        secrets: SecretSource | None = None,
        resources: Declared | None = None,
        after_kill: Callable[[str], None] | None = None,
        tracing: Tracing | None = None,
        lineage_namespace: str | None = None,
    ) -> None:
        self.store = store
        # None (tracing off) costs one comparison per attempt: no span objects at all.
        self.tracing = tracing
        self.span: RunSpan | None = None
        self.secrets = secrets
        self.resources = resources or None  # the environment's [resources], if any
        # Called with the log of an attempt whose worker did not end it (killed, crashed):
        # the worker masks secret values in its log when an attempt ends, this one could not.
        self.after_kill = after_kill
        self.pipeline = pipeline
        self.executor = executor
        self.run_id = run.id
        self.owner = owner
        self.logs_dir = logs_dir
        self._logs_dir = str(logs_dir)
        self._folder = run_folder(run.id)  # of its results: under the day it was made
        self.max_log_bytes = max_log_bytes
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.store_down = False  # the last write failed because the store was unreachable
        self._ended = False  # finish() has recorded the run's end in the book
        self._past: dict[str, list[str]] = {}  # task key -> outcomes of its attempts so far
        self._retried: set[tuple[str, int]] = set()  # (key, attempt) failed, to run again
        self._attempt_series: dict[str, Any] = {}  # outcome -> its counter
        self._duration_series: dict[str, Any] = {}  # task name -> its histogram
        self.cancel_poll = cancel_poll
        self.on_progress = on_progress
        self.rng = rng or random.Random()
        # The store keeps params as JSON; tasks get them as the pipeline's type hints say.
        self.params = _sealed_params(pipeline, run.params, pipeline.validate_params(run.params))
        self.partition_dims, self.window = _partition_of(pipeline, run.partition)
        self.book = RunBook(run, pipeline.graph, self.params, clock, self._new_changes())
        # None ([lineage] not set): no lineage event is built or written at all.
        self.lineage: RunLineage | None = None
        if lineage_namespace is not None:
            self.lineage = RunLineage(
                pipeline, namespace=lineage_namespace, run_id=run.id, partition=run.partition,
                params=run.params, window=self.window,
            )
        # The book's dicts themselves (it never replaces them), kept here for callers of the driver.
        self.rows = self.book.rows
        self.children = self.book.children
        self.item_refs: dict[str, tuple[ResultRef, ...]] = {}
        self.items_needed = plan.items_needed(pipeline)
        self.deadlines: dict[str, datetime] = {}  # running key -> timeout
        self.conditions = ConditionChecks()
        self.last_flush = self.clock()
        self.last_cancel_check = self.clock()
        self.pools = PoolClaims(store, run.id, pool_poll)
        # Most pipelines use no pool: they never write pool claims at all.
        self.uses_pools = any(n.task.pool for n in pipeline.graph.nodes.values())
        self._begun = False
        self._starting = False
        self.write_due = False  # set by prepare(): the step must be written before launch
        # An executor that takes batches of attempts (the local process pool).
        self._batching = executor if isinstance(executor, Batching) else None
        self._batches = BatchPolicy(lambda node: pipeline.graph.nodes[node].task)
        self._input_refs: dict[str, tuple[TaskRunRecord, ResultRef]] = {}  # see resolve_inputs

    @property
    def run(self) -> RunRecord:
        """The run's row as of the latest change."""
        return self.book.run

    def counts(self) -> dict[TaskState, int]:
        """How many task runs are in each state (mapped nodes count by element)."""
        return self.book.counts()

    def _new_changes(self) -> Changes:
        return Changes(
            run_id=self.run_id,
            owner=self.owner,
            lease_expires_at=self.clock() + timedelta(seconds=self.lease_ttl),
            lease_seconds=self.lease_ttl,
        )

    def _log_path(self, key: str, attempt: int) -> str:
        return plan.log_path(self._logs_dir, self.run_id, key, attempt)


def _partition_of(
    pipeline: Pipeline, key: str | None
) -> tuple[tuple[tuple[str, str], ...], tuple[datetime, datetime] | None]:
    """The parts and time window a task's context shows for the run's partition."""
    parts = pipeline.automation.partitions
    if parts is None or key is None:
        return (), None
    try:
        found = parts.get(key)
    except ValueError:
        return (), None  # a key from before the partitions changed: tasks still get the key
    window = None
    if found.start is not None and found.end is not None:
        window = (found.start, found.end)
    return tuple(found.dims.items()), window


def _sealed_params(
    pipeline: Pipeline, stored: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """``params`` with each secret param sealed in the store (it reads ``****`` in the run's
    params) replaced by a placeholder: only the worker running a task opens the value."""
    for name, spec in pipeline.params.items():
        if spec.secret and stored.get(name) == MASKED:
            params[name] = SealedParam(name)
    return params
