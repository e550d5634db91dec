"""Which queued attempts of a run go to one worker together, in one message (a batch).

A tiny task costs far less than the message, the commit and the wake-up that carry it to a
worker and back, so many of them sent at once run much faster: a map's elements, or a fan of
plain tasks. But a batch runs its attempts one after another, and they all show "running"
from the moment it is sent, so:

* only tasks that set no timeout (enforced per attempt), no pool (a slot per attempt) and
  no ``max_calls_per_worker`` (a worker replaced after so many) and do not run in the
  driver's threads batch;
* a plain task batches only once an attempt of its function has been seen to be quick
  (``QUICK_SECONDS``, dispatch to outcome, shared among the batch's attempts): a fan of
  slow tasks keeps one attempt per worker, each running when it shows "running", its log
  followed as it is written. A map's elements batch from the first, as they always have:
  mapping over many small elements is what a map is for;
* an attempt whose batch was lost (its worker died) runs alone from then on, so that the
  attempt that kills its worker is found out and fails alone.

An ``async def`` task is different (``executors/aio.py``): its batch runs on an event loop,
``concurrency`` attempts at once, each timed out by the worker on its own. So its attempts
batch from the first, timeout or not, only with other async attempts, and the driver's own
deadline for them is only a last resort (``batch_deadline``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.domain.states import TaskState

if TYPE_CHECKING:
    from legato.definitions.task import Task
    from legato.domain.records import TaskRunRecord

#: An attempt of a plain task quicker than this (seconds) lets its function's tasks batch.
QUICK_SECONDS = 0.05
#: Seconds the driver adds to an async batch's own timeouts before it kills a worker whose
#: loop does not come back (a coroutine that blocks it).
DEADLINE_GRACE = 30.0


def batch_deadline(timeout: float, attempts: int, concurrency: int) -> float:
    """Seconds after which the driver gives up on a batch of ``attempts`` coroutines, each
    cancelled by the worker after ``timeout``, ``concurrency`` at a time."""
    return timeout * math.ceil(attempts / concurrency) + DEADLINE_GRACE


class BatchPolicy:
    """What one run's driver knows about batching its attempts (see the module docstring)."""

    def __init__(self, task_of: Callable[[str], Task]) -> None:
        self._task_of = task_of  # node -> its task
        self._fit: dict[str, bool] = {}  # node -> whether its task may batch at all
        self._solo: set[str] = set()  # task keys whose batch was lost
        self._pace: dict[Callable[..., Any], float] = {}  # task function -> s per attempt
        self._sizes: dict[str, int] = {}  # running task key -> size of its batch

    def batchable(self, row: TaskRunRecord) -> bool:
        """Whether ``row`` is queued and may start in a batch."""
        if row.state != TaskState.QUEUED or row.task_key in self._solo:
            return False
        fit = self._fit.get(row.node)
        task = self._task_of(row.node)
        if fit is None:
            fit = self._fit[row.node] = (
                (task.timeout is None or task.is_async)
                and task.pool is None
                and not task.in_process
                and task.max_calls_per_worker is None
            )
        if not fit:
            return False
        if row.map_index is not None or task.is_async:
            return True
        pace = self._pace.get(task.fn)
        return pace is not None and pace < QUICK_SECONDS

    def together(self, first: TaskRunRecord, other: TaskRunRecord) -> bool:
        """Whether ``other`` may join the batch ``first`` starts: async attempts go with
        async attempts only (they run on an event loop, the others one after another)."""
        return self._task_of(first.node).is_async == self._task_of(other.node).is_async and (
            self.batchable(other)
        )

    def started(self, keys: list[str]) -> None:
        """``keys`` were sent to a worker as one batch."""
        for key in keys:
            self._sizes[key] = len(keys)

    def ended(self, row: TaskRunRecord, now: datetime) -> None:
        """An attempt of ``row`` (still showing its start) ended at ``now``: how quick its
        function is, as far as this attempt tells."""
        size = self._sizes.pop(row.task_key, 1)
        if row.started_at is None:
            return
        took = (now - row.started_at).total_seconds() / size
        self._pace[self._task_of(row.node).fn] = took

    def lost(self, key: str) -> None:
        """``key``'s batch was lost: it runs alone from now on."""
        self._solo.add(key)
