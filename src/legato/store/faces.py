"""The store's faces: what each consumer depends on, as typed Protocols.

A consumer names the face it needs rather than ``Store``, so a test double or another
backend implements only that: the run engine needs ``DriverStore`` (its run's rows, the
one-transaction step, its lease, pool slots), nothing of schedules, triggers or browsing.
``Store`` and its parts satisfy every face here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from legato.domain.records import AttemptRecord, Changes, RunRecord, TaskRunRecord


class RunRows(Protocol):
    """One run's rows as its driver reads and writes them."""

    def get_run(self, run_id: str) -> RunRecord: ...

    def get_task_runs(self, run_id: str) -> list[TaskRunRecord]: ...

    def get_attempts(self, run_id: str, task_key: str | None = None) -> list[AttemptRecord]: ...

    def apply(self, changes: Changes) -> None: ...

    def release_lease(self, run_id: str, owner: str) -> bool: ...


class PoolSlots(Protocol):
    """Slots of the pools a run's tasks hold."""

    def claim_pool_slot(self, pool: str, run_id: str, task_key: str, now: datetime) -> bool: ...

    def release_pool_slot(self, run_id: str, task_key: str | None = None) -> None: ...


class DriverStore(Protocol):
    """What the run engine needs of the store."""

    @property
    def runs(self) -> RunRows: ...

    @property
    def pools(self) -> PoolSlots: ...
