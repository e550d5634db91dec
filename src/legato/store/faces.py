"""The store's faces: what each consumer depends on, as typed Protocols.

A consumer names the face it needs rather than ``Store``, so a test double or another
backend implements only that, and mypy refuses a reach beyond it. The run engine needs
``DriverStore``, down to the methods (its run's rows, the one-transaction step, its lease,
pool slots). The services layer's consumers name the parts they use: the scheduler's tick
``TickStore`` (schedules, triggers, backfills, assets), trigger listeners ``ListenerStore``
(triggers), the one home for driving runs ``DrivingStore`` (runs, claims, queue, backfills).
``Store`` satisfies every face here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from legato.domain.materializations import Materialization
from legato.domain.records import AttemptRecord, Changes, RunRecord, TaskRunRecord

if TYPE_CHECKING:
    from legato.store.asset_store import AssetStore
    from legato.store.backfill_store import BackfillStore
    from legato.store.claim_store import ClaimStore
    from legato.store.queue_store import QueueStore
    from legato.store.run_store import RunStore
    from legato.store.schedule_store import ScheduleStore
    from legato.store.trigger_store import TriggerStore


class RunRows(Protocol):
    """One run's rows as its driver reads and writes them."""

    def get_run(self, run_id: str) -> RunRecord: ...

    def get_task_runs(self, run_id: str) -> list[TaskRunRecord]: ...

    def get_task_run(self, run_id: str, task_key: str) -> TaskRunRecord: ...

    def get_attempts(self, run_id: str, task_key: str | None = None) -> list[AttemptRecord]: ...

    def apply(self, changes: Changes) -> None: ...

    def apply_all(self, batch: Sequence[Changes]) -> None: ...

    def release_lease(self, run_id: str, owner: str) -> bool: ...


class PoolSlots(Protocol):
    """Slots of the pools a run's tasks hold."""

    def claim_pool_slot(self, pool: str, run_id: str, task_key: str, now: datetime) -> bool: ...

    def release_pool_slot(self, run_id: str, task_key: str | None = None) -> None: ...


class AssetReads(Protocol):
    """The materializations a run's relationship checks look up."""

    def latest(
        self, assets: Collection[str], *, brief: bool = False
    ) -> dict[str, Materialization]: ...

    def history(
        self,
        asset: str,
        *,
        partition: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Materialization]: ...


class DriverStore(Protocol):
    """What the run engine needs of the store."""

    @property
    def runs(self) -> RunRows: ...

    @property
    def pools(self) -> PoolSlots: ...

    @property
    def assets(self) -> AssetReads: ...


class ListenerStore(Protocol):
    """What a trigger listener reads: its trigger's state and the events it has seen."""

    @property
    def triggers(self) -> TriggerStore: ...


class TickStore(ListenerStore, Protocol):
    """What the scheduler's tick reads and moves: schedule cursors, trigger cursors and
    events, backfills' progress, and the materializations asset triggers wait for."""

    @property
    def schedules(self) -> ScheduleStore: ...

    @property
    def assets(self) -> AssetStore: ...

    @property
    def backfills(self) -> BackfillStore: ...


class DrivingStore(Protocol):
    """What taking, claiming, adopting and settling runs needs."""

    @property
    def runs(self) -> RunStore: ...

    @property
    def claims(self) -> ClaimStore: ...

    @property
    def queue(self) -> QueueStore: ...

    @property
    def backfills(self) -> BackfillStore: ...
