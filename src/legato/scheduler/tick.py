"""The scheduler's tick: given ``now`` and the store, create the runs that are due.

One tick handles schedules, upstream-success and asset triggers, and backfill batches. It
never sleeps and never reads the clock: the daemon calls ``tick(now)`` whenever something may
be due (the next schedule tick, a run finished, a backfill changed) and sleeps until
``next_at``.

Every run it creates has a unique key derived from what caused it, so a tick repeated after a
crash between "create the run" and "move the cursor" finds the run made and moves on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.definitions.partitioning import PartitionError
from legato.definitions.triggering import AssetTrigger, UpstreamTrigger
from legato.domain.states import BackfillState, RunState
from legato.observability import metrics
from legato.services.backfill_views import keys_page
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.definitions.scheduling import Schedule
    from legato.domain.materializations import Materialization
    from legato.domain.records import BackfillRecord, RunRecord, ScheduleState, TriggerState
    from legato.services.automation_service import Automation
    from legato.store.faces import TickStore

log = logging.getLogger("legato.scheduler")

#: How far past its time a tick still counts as on time for catchup="none".
GRACE_SECONDS = 60.0
#: Upstream successes and materializations written by other processes are only seen by
#: asking the store.
UPSTREAM_POLL = timedelta(seconds=2)
#: Event (and materialization) ids looked at again on each tick (see Scheduler._upstream).
UPSTREAM_LOOKBACK = 200


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TickResult:
    """What one tick did, and when the next one is due."""

    created: list[RunRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    next_at: datetime | None = None

    def wake_by(self, t: datetime | None) -> None:
        if t is not None and (self.next_at is None or t < self.next_at):
            self.next_at = t


class Scheduler:
    """Turns schedules, upstream successes and backfills into queued runs."""

    def __init__(self, automation: Automation) -> None:
        self.auto = automation
        self.ws = automation.ws

    @property
    def _store(self) -> TickStore:
        return self.ws.store

    def follows(self, run: RunRecord) -> bool:
        """Whether ``run`` having finished may make a tick create runs: it belongs to a
        backfill (whose next runs may start), an upstream trigger waits on its pipeline, or
        an asset trigger exists (its materializations may count). When none does, a tick
        after it would only read the store, so the daemon ticks by its timer instead."""
        if run.backfill_id is not None:
            return True
        for pipe in self.ws.project.pipelines.values():
            for trig in pipe.automation.triggers:
                if isinstance(trig, AssetTrigger):
                    return True
                if isinstance(trig, UpstreamTrigger) and trig.upstream == run.pipeline:
                    return True
        return False

    def tick(self, now: datetime) -> TickResult:
        """Create every run due at ``now``; returns them and the time of the next tick."""
        result = TickResult()
        states = self._store.schedules.schedule_states()
        for pipe in self.ws.project.pipelines.values():
            for sched in pipe.automation.schedules:
                self._schedule(pipe, sched, states.get((pipe.name, sched.name or "")), now, result)
        self._upstream(now, result)
        self._assets(now, result)
        self._backfills(now, result)
        return result

    # -- schedules ------------------------------------------------------------------------

    def _schedule(
        self,
        pipe: Pipeline,
        sched: Schedule,
        state: ScheduleState | None,
        now: datetime,
        result: TickResult,
    ) -> None:
        name = sched.name or "schedule"
        store = self._store
        if state is None or state.cursor is None:
            # First sight: start from now; history is a backfill's job, not the schedule's.
            store.schedules.set_schedule_state(pipe.name, name, now, cursor=now)
            result.wake_by(sched.next_after(now))
            return
        if state.paused:
            return
        cursor = state.cursor
        ticks = sched.ticks(cursor, now)
        if not ticks:
            result.wake_by(sched.next_after(cursor))
            return
        due = sched.due(cursor, now, grace=GRACE_SECONDS)
        for tick in due:
            self._scheduled_runs(pipe, name, tick, result)
        # From the cursor read above only: if another scheduler moved it meanwhile, it made
        # the same runs (their keys are unique) and its move stands.
        store.schedules.set_schedule_state(
            pipe.name, name, now, cursor=ticks[-1], expect_cursor=cursor
        )
        result.wake_by(sched.next_after(ticks[-1]))

    def _scheduled_runs(
        self, pipe: Pipeline, name: str, tick: datetime, result: TickResult
    ) -> None:
        parts = pipe.automation.partitions
        targets: list[str | None]
        if parts is None:
            targets = [None]
        else:
            targets = [p.key for p in parts.for_tick(tick)]
            if not targets:
                log.info("%s: schedule %s at %s has no closed partition", pipe.name, name, tick)
        for key in targets:
            run_key = f"schedule:{pipe.name}:{name}:{_iso(tick)}" + (f":{key}" if key else "")
            self._fire(pipe.name, result, run_key=run_key, origin=f"schedule:{name}", partition=key)

    def _fire(
        self, pipeline: str, result: TickResult, event_at: datetime | None = None, **kw: object
    ) -> str | None:
        """Create the run; None, or why the pipeline refused it."""
        try:
            run, new = self.auto.fire(pipeline, **kw)  # type: ignore[arg-type]
        except ServiceError as exc:
            result.errors.append(f"{pipeline}: {exc}")
            log.error("%s: cannot create a run: %s", pipeline, exc)
            return str(exc)
        if new:
            result.created.append(run)
            if event_at is not None:  # a trigger's event: how long it took to become a run
                lag = (run.created_at - event_at).total_seconds()
                metrics.TRIGGER_LAG.labels(pipeline, str(kw["trigger"])).observe(max(0.0, lag))
        return None

    # -- upstream success -----------------------------------------------------------------

    def _upstream(self, now: datetime, result: TickResult) -> None:
        store = self._store
        waiting: dict[str, list[tuple[Pipeline, UpstreamTrigger]]] = {}
        for pipe in self.ws.project.pipelines.values():
            for trig in pipe.automation.triggers:
                if isinstance(trig, UpstreamTrigger):
                    waiting.setdefault(trig.upstream, []).append((pipe, trig))
        if not waiting:
            return
        result.wake_by(now + UPSTREAM_POLL)
        states = store.triggers.trigger_states()
        for upstream, downstream in waiting.items():
            for pipe, trig in downstream:
                st = states.get((pipe.name, trig.name))
                if st is None or st.cursor is None:
                    # First sight: only successes from now on count. The row may exist
                    # without a cursor (ensure_triggers made it): that is first sight too.
                    if st is None:
                        store.triggers.ensure_trigger(pipe.name, trig.name, trig.kind, now)
                    first = store.triggers.last_event_id()
                    store.triggers.set_trigger_state(
                        pipe.name, trig.name, now, cursor={"event_id": first, "floor": first}
                    )
                    continue
                if st.paused:
                    continue
                cursor = int((st.cursor or {}).get("event_id", 0))
                # Events before first sight never count, not even through the look-back.
                floor = int((st.cursor or {}).get("floor", 0))
                # On PostgreSQL, events of different runs may commit out of id order: look
                # back a little and let the recorded event keys drop what was handled.
                since = max(floor, cursor - UPSTREAM_LOOKBACK)
                found = store.triggers.runs_finished_after(
                    since, [upstream], limit=UPSTREAM_LOOKBACK + 500
                )
                done = store.triggers.seen_event_keys(
                    pipe.name, trig.name, [r.id for _, r in found]
                )
                for event_id, run in found:
                    if run.id not in done:
                        self._after_success(pipe, trig, run, result)
                    cursor = max(cursor, event_id)
                if cursor != int((st.cursor or {}).get("event_id", 0)):
                    store.triggers.set_trigger_state(
                        pipe.name,
                        trig.name,
                        now,
                        cursor={"event_id": cursor, "floor": floor},
                        expect_cursor=st.cursor,
                    )

    def _after_success(
        self, pipe: Pipeline, trig: UpstreamTrigger, upstream: RunRecord, result: TickResult
    ) -> None:
        # Same partition when both are partitioned; otherwise a plain run.
        partition = upstream.partition if pipe.automation.partitions is not None else None
        self._fire(
            pipe.name,
            result,
            event_at=upstream.finished_at,
            run_key=f"trigger:{pipe.name}:{trig.name}:{upstream.id}",
            origin=f"trigger:{trig.name}",
            partition=partition,
            trigger=trig.name,
            event_keys=[upstream.id],
        )

    # -- asset materializations ------------------------------------------------------------

    def _first_sight(
        self, pipe: Pipeline, trig: AssetTrigger, st: TriggerState | None, now: datetime
    ) -> bool:
        """Start the trigger's cursor at the newest materialization if it has none: only
        materializations from now on count. True when it had none."""
        if st is not None and st.cursor is not None:
            return False
        store = self._store
        if st is None:  # the row may exist without a cursor (ensure_triggers made it)
            store.triggers.ensure_trigger(pipe.name, trig.name, trig.kind, now)
        first = store.assets.last_id()
        store.triggers.set_trigger_state(
            pipe.name, trig.name, now, cursor={"id": first, "floor": first}
        )
        return True

    def _assets(self, now: datetime, result: TickResult) -> None:
        store = self._store
        watching = [
            (pipe, trig)
            for pipe in self.ws.project.pipelines.values()
            for trig in pipe.automation.triggers
            if isinstance(trig, AssetTrigger)
        ]
        if not watching:
            return
        result.wake_by(now + UPSTREAM_POLL)
        states = store.triggers.trigger_states()
        for pipe, trig in watching:
            st = states.get((pipe.name, trig.name))
            if self._first_sight(pipe, trig, st, now) or st is None or st.paused:
                continue
            was = int(st.cursor.get("id", 0))
            floor = int(st.cursor.get("floor", 0))  # nothing before first sight counts
            waiting = set(st.cursor.get("waiting", ()))
            # As for upstream successes: ids may commit out of order on PostgreSQL, so look
            # back a little and let the recorded event keys drop what was handled.
            found = store.assets.materialized_after(
                max(floor, was - UPSTREAM_LOOKBACK), trig.assets, limit=UPSTREAM_LOOKBACK + 500
            )
            cursor = max([was, *(m.id for m in found)])
            # A run's materializations count once it has finished, when it made all it will:
            # one downstream run per producing run (and partition), reading all it wrote.
            by_run: dict[str, list[Materialization]] = {}
            running: set[str] = set()
            runs = waiting | {m.run_id for m in found}
            for m, state in store.assets.of_runs(runs, trig.assets):
                if RunState(state).finished:
                    by_run.setdefault(m.run_id, []).append(m)
                else:
                    running.add(m.run_id)
            events = [
                (made[-1], partition, run_id if partition is None else f"{run_id}:{partition}")
                for run_id, made in by_run.items()
                for partition in _targets(pipe, made)
            ]
            done = store.triggers.seen_event_keys(pipe.name, trig.name, [e for *_, e in events])
            for last, partition, key in events:
                if key not in done:
                    self._after_materialization(pipe, trig, last, partition, key, result)
            if cursor != was or running != waiting:
                store.triggers.set_trigger_state(
                    pipe.name,
                    trig.name,
                    now,
                    cursor={"id": cursor, "floor": floor, "waiting": sorted(running)},
                    expect_cursor=st.cursor,
                )

    def _after_materialization(
        self,
        pipe: Pipeline,
        trig: AssetTrigger,
        last: Materialization,
        partition: str | None,
        key: str,
        result: TickResult,
    ) -> None:
        refused = self._fire(
            pipe.name,
            result,
            event_at=last.at,
            run_key=f"trigger:{pipe.name}:{trig.name}:{key}",
            origin=f"trigger:{trig.name}",
            partition=partition,
            trigger=trig.name,
            event_keys=[key],
        )
        if refused is not None:
            # Kept with why, shown with the pipeline's refused events; and never tried again.
            from legato.domain.records import NewTriggerEvent

            self._store.triggers.record_trigger_event(
                NewTriggerEvent(pipe.name, trig.name, key, last.at, "failed", None, refused)
            )

    # -- backfills ------------------------------------------------------------------------

    def _backfills(self, now: datetime, result: TickResult) -> None:
        store = self._store
        for b in store.backfills.list_backfills(active=True, limit=1000):
            if b.state != BackfillState.RUNNING:
                continue
            counts = store.backfills.backfill_run_states(b.id)
            active = counts.get("queued", 0) + counts.get("running", 0)
            index = b.next_index
            free = b.max_concurrent - active
            for key in self._backfill_keys(b, now, result, index, index + max(0, free)):
                self._fire(
                    b.pipeline,
                    result,
                    run_key=f"backfill:{b.id}:{key}",
                    origin=f"backfill:{b.id}",
                    partition=key,
                    params=b.params,
                    priority=b.priority,
                    backfill_id=b.id,
                )
                index += 1
                active += 1
            if index != b.next_index:
                store.backfills.update_backfill(b.id, now, next_index=index)
            if index >= b.keys.total and active == 0:
                store.backfills.update_backfill(b.id, now, state=BackfillState.COMPLETED)

    def _backfill_keys(
        self, b: BackfillRecord, now: datetime, result: TickResult, start: int, stop: int
    ) -> list[str]:
        """The backfill's keys ``start``..``stop - 1``, worked out from its pipeline's
        partitions (only those: a range is never listed whole)."""
        if start >= min(stop, b.keys.total):
            return []
        pipe = self.ws.project.pipelines.get(b.pipeline)
        parts = None if pipe is None else pipe.automation.partitions
        try:
            keys = keys_page(b.keys, parts, now, start, stop - start)
            if not keys:
                raise PartitionError(f"pipeline {b.pipeline!r} has no such partitions now")
        except PartitionError as exc:
            # Paused, not tried again each tick: an operator resumes it once the code is back.
            why = f"paused: its partitions do not resolve: {exc}"
            result.errors.append(f"{b.pipeline}: backfill {b.id}: {why}")
            log.error("%s: backfill %s: %s", b.pipeline, b.id, why)
            self._store.backfills.update_backfill(
                b.id, now, state=BackfillState.PAUSED, message=why
            )
            return []
        return keys


def _targets(pipe: Pipeline, made: list[Materialization]) -> list[str | None]:
    """The partitions of ``pipe`` a run's materializations start runs for: their own
    partitions; a plain run for a pipeline without partitions; for an asset without
    partitions, those a schedule firing at the materialization's time would run."""
    parts = pipe.automation.partitions
    if parts is None:
        return [None]
    out: dict[str | None, None] = {}
    for m in made:
        if m.partition is not None:
            out[m.partition] = None
            continue
        found = parts.for_tick(m.at)
        if not found:
            log.info("%s: %s at %s falls before its partitions", pipe.name, m.asset, _iso(m.at))
        out.update(dict.fromkeys(p.key for p in found))
    return list(out)
