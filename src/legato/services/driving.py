"""Who starts a run, and how: the one home for driving runs.

Everything that makes a process drive a run lives here: building a ``RunDriver`` from the
project's settings, taking a run's lease (waiting out a dead driver's when asked), claiming
queued runs and orphaned runs for a scheduler, giving leases back, and settling a cancel that
no driver is there to carry out. Once built, a driver renews its own lease as it writes.

Two ways in:

- ``RunDriving`` drives one run to its end in the caller's process: ``legato run``,
  ``legato resume``, ``legato cancel`` (for a run nobody drives) and tests.
- ``Fleet`` is what a daemon drives at once: many runs through one ``Conductor`` over one
  executor. It claims queued runs only for its free run slots (``[daemon] max_runs``), so a
  second scheduler on the same store always finds work while the first is saturated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.domain.states import RunState
from legato.observability import metrics
from legato.observability.logs import log_context
from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.owner import owner_is_alive_here, owner_is_dead, this_owner
from legato.services.service_errors import Conflict, ServiceError

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.domain.records import RunRecord, TaskRunRecord
    from legato.engine.conductor import Conductor
    from legato.engine.driver import ProgressCallback, RunDriver
    from legato.executors.interface import Executor
    from legato.resources.opened import Declared
    from legato.services.workspace import Workspace
    from legato.store.faces import DrivingStore

log = logging.getLogger("legato.driving")


class OtherEnvironment(Conflict):
    """A run made in another environment than the driving process's: its tasks would read
    and write this environment's resources (and results) instead of its own."""


class RunDriving:
    """Drive runs of ``ws`` in this process, under the lease owner name ``owner``."""

    def __init__(self, ws: Workspace, owner: str | None = None) -> None:
        self.ws = ws
        self.owner = owner or this_owner()

    def check_environment(self, run: RunRecord) -> None:
        """Raise OtherEnvironment unless ``run`` was made in this process's environment
        (a run made before environments were recorded has none, and is driven anywhere)."""
        env = self.ws.config.environment
        if run.environment is not None and run.environment != env:
            raise OtherEnvironment(
                f"run {run.id} was made in environment {run.environment!r} and this process "
                f"is in {env!r}: it is not driven here (drive it with --env {run.environment})"
            )

    # -- leases ---------------------------------------------------------------------------

    def lease_until(self, now: datetime) -> datetime:
        """When a lease taken at ``now`` runs out unless renewed."""
        return now + timedelta(seconds=self.ws.config.lease_seconds)

    def take_lease(self, run: RunRecord, *, wait: bool) -> RunRecord:
        """Take the run's lease; with ``wait``, wait for a dead driver's lease to run out.

        A live driver renews its lease, so seeing the lease renewed (or its process alive
        on this host) ends the wait with a Conflict rather than waiting forever.
        """
        store: DrivingStore = self.ws.store
        first_expiry = None
        while True:
            now = self.ws.clock()
            dead = run.lease_owner if run.lease_owner and owner_is_dead(run.lease_owner) else None
            got = store.runs.acquire_lease(
                run.id, self.owner, self.lease_until(now), now, take_over=dead
            )
            if got is not None:
                return got
            current = store.runs.get_run(run.id)
            if current.state.finished:
                raise Conflict(f"run {run.id} has finished meanwhile ({current.state})")
            expiry = current.lease_expires_at
            renewed = first_expiry is not None and expiry is not None and expiry > first_expiry
            if not wait or expiry is None or renewed or owner_is_alive_here(current.lease_owner):
                until = f" (lease until {expiry:%H:%M:%S} UTC)" if expiry else ""
                raise Conflict(f"run {run.id} is being driven by {current.lease_owner}{until}")
            first_expiry = first_expiry or expiry
            time.sleep(max(0.05, min(1.0, (expiry - now).total_seconds())))
            run = current

    def release(self, run: RunRecord) -> None:
        """Give the run's lease back (it runs out by itself if that fails)."""
        try:
            self.ws.store.runs.release_lease(run.id, self.owner)
        except Exception as exc:
            log.warning("run %s: could not give its lease back: %s", run.id, exc)

    # -- drivers --------------------------------------------------------------------------

    def driver(
        self,
        run: RunRecord,
        pipe: Pipeline,
        executor: Executor,
        *,
        on_progress: ProgressCallback | None = None,
        cancel_poll: float | None = None,
    ) -> RunDriver:
        """A driver of ``run`` (whose lease this owner holds) on ``executor``."""
        from legato.engine.driver import RunDriver
        from legato.executors.interface import SecretSource
        from legato.observability import tracing
        from legato.services.secrets_service import mask_log_file

        if run.code_version != pipe.code_version:
            self.ws.save_snapshot(pipe)  # the run will record the version it runs on
        extra: dict[str, Any] = {} if cancel_poll is None else {"cancel_poll": cancel_poll}
        return RunDriver(
            self.ws.store,
            pipe,
            executor,
            run,
            owner=self.owner,
            logs_dir=self.ws.config.logs_dir,
            max_log_bytes=self.ws.config.max_log_bytes,
            clock=self.ws.clock,
            lease_ttl=self.ws.config.lease_seconds,
            on_progress=on_progress,
            secrets=SecretSource(self.ws.config.database_url, _key_file(self.ws)),
            resources=_declared(self.ws),
            after_kill=lambda path: mask_log_file(self.ws, run.id, path),
            tracing=tracing.from_env(),
            lineage_namespace=lineage.namespace if (lineage := self.ws.config.lineage) else None,
            **extra,
        )

    def execute(
        self,
        run_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        wait: bool = False,
        task_runs: Sequence[TaskRunRecord] | None = None,
    ) -> RunRecord:
        """Take the run's lease and drive it to its end in this process; ``task_runs``: its
        task runs, as this process has just created them (None: read from the store)."""
        ws = self.ws
        ws.refresh()
        run = ws.store.runs.find_run(run_id)
        if run.state.finished:
            raise Conflict(f"run {run.id} has already finished ({run.state})")
        self.check_environment(run)
        check_lineage(ws)
        pipe = ws.pipeline(run.pipeline)
        executor = ws.executor()
        ws.sync_pools()
        run = self.take_lease(run, wait=wait)
        if run.state != RunState.QUEUED:
            task_runs = None  # begun by another driver since they were made: read them
        try:
            ended = self.driver(run, pipe, executor, on_progress=on_progress).drive(task_runs)
        except Exception as exc:
            full = ws.store.full_error(exc, f", then `legato resume {run.id}` carries the run on")
            if full is None:
                raise
            raise full from exc
        if ws.config.lineage is not None:
            self._send_lineage()
        return ended

    def _send_lineage(self) -> None:
        # A run driven here (`legato run`) sends its lineage events as it ends, with no daemon
        # needed; what fails stays in the outbox for a daemon's lineage thread to retry.
        from legato.services.lineage_service import deliver_due

        try:
            for sent in deliver_due(self.ws, self.ws.clock(), self.owner):
                if sent.error is not None:
                    log.warning("lineage event %s of run %s: %s", sent.event_type, sent.run_id,
                                sent.error)
        except Exception as exc:
            log.warning("lineage events not sent: %s", exc)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: its driver stops it, or, when nobody drives it, it is stopped here."""
        ws = self.ws
        store: DrivingStore = ws.store
        run = store.runs.find_run(run_id)
        if run.state.finished:
            raise Conflict(f"run {run.id} has already finished ({run.state})")
        run = store.runs.request_cancel(run.id, ws.clock())
        alive = (
            run.lease_owner
            and not owner_is_dead(run.lease_owner)
            and run.lease_expires_at is not None
            and run.lease_expires_at > store.claims.lease_clock(ws.clock())
        )
        if alive:
            return run
        # Nobody drives it: settle it here without starting any task.
        run = self.take_lease(run, wait=False)
        try:
            pipe = ws.pipeline(run.pipeline)
            return self.driver(run, pipe, NoWorkers(), cancel_poll=0.0).drive()
        except (ServiceError, ValueError, KeyError):
            # The run no longer fits the code (its pipeline, params or tasks changed): the
            # driver cannot load it, so its rows are settled as they are.
            run = store.runs.cancel_without_driver(
                run.id, self.owner, ws.clock(), "canceled by request"
            )
            metrics.RUNS_FINISHED.labels(run.pipeline, run.state.value).inc()
            return run

    def resumable(self) -> list[RunRecord]:
        """Runs that were queued or running and that no live driver holds (those made in
        another environment left out: they are not driven here)."""
        store: DrivingStore = self.ws.store
        now = self.ws.clock()
        out = list(store.runs.resumable_runs(now))
        now = store.claims.lease_clock(now)  # leases are judged by the store's clock
        for run in store.runs.runs_in_state(RunState.RUNNING):
            if (
                run.lease_owner
                and run.lease_expires_at
                and run.lease_expires_at >= now
                and owner_is_dead(run.lease_owner)
            ):
                out.append(run)
        env = self.ws.config.environment
        return [r for r in out if r.environment in (None, env)]


class Fleet(Service):
    """The runs one daemon drives at once, through one ``Conductor`` over one executor.

    ``say`` hears a line per notable event (started, resumed, cannot start). Use it from the
    daemon's loop thread; only ``wake()`` may be called from others.
    """

    def __init__(
        self,
        ws: Workspace,
        actor: Actor,
        *,
        owner: str,
        max_runs: int,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        super().__init__(actor)
        self.ws = ws
        self.driving = RunDriving(ws, owner)
        self.max_runs = max_runs
        # Free places that make claiming queued runs worth a round trip while every worker
        # has work (see start_queued).
        self.batch = max(1, max_runs // 4)
        self._say = say
        self._conductor: Conductor | None = None
        self._unstartable: set[str] = set()  # runs whose code no longer fits (see _drive)
        self._loads_seen = ws.loads

    @action("runs.drive")
    def start(self) -> None:
        """Start the executor (its workers fork now) and the conductor."""
        from legato.engine.conductor import Conductor

        self._conductor = Conductor(self.ws.executor(), clock=self.ws.clock)

    @property
    def conductor(self) -> Conductor:
        assert self._conductor is not None, "Fleet.start() first"
        return self._conductor

    @property
    def active(self) -> frozenset[str]:
        """Ids of the runs being driven."""
        return self._conductor.active if self._conductor is not None else frozenset()

    @action("runs.drive")
    def free_slots(self) -> int:
        """How many more runs this daemon may drive now."""
        return max(0, self.max_runs - len(self.active))

    @action("runs.drive")
    def wake(self) -> None:
        """Interrupt the current ``step``'s wait. Thread-safe."""
        if self._conductor is not None:
            self._conductor.wake()

    @action("runs.drive")
    def step(self, wait: float) -> list[RunRecord]:
        """Advance every run, waiting at most ``wait`` s for something to happen; the runs
        that finished."""
        finished = self.conductor.step(wait)
        if finished:
            self._let_go_old_code()
        return finished

    def _let_go_old_code(self) -> None:
        # Workers of older code stay only while a run in flight started on it.
        self.conductor.executor.retain({d.pipeline.code_version for d in self.conductor.drivers})

    @action("runs.drive")
    def shutdown(self) -> None:
        """Leave every run to be carried on (see ``Conductor.shutdown``)."""
        if self._conductor is not None:
            self._conductor.shutdown()

    # -- taking runs ----------------------------------------------------------------------

    @action("runs.drive")
    def start_queued(self, now: datetime) -> None:
        """Claim queued runs for the free run slots, and drive them."""
        self.ws.refresh()  # new code on disk: the runs claimed now start on it
        if self.ws.loads != self._loads_seen:  # reloaded (here or by a thread making a run)
            self._loads_seen = self.ws.loads
            self._unstartable.clear()  # the new code may fit them again
            self._let_go_old_code()
        room = self.free_slots()
        if room <= 0:
            return
        if room < self.batch and self.conductor.idle_workers() == 0:
            # Every free worker has a ready task of a run driven here: a run claimed now
            # would only wait for one. Claim once a batch of places is free (one round trip
            # for several runs), or as soon as a worker would be left idle.
            return
        store: DrivingStore = self.ws.store
        pipes = self.ws.project.pipelines
        caps = _caps(pipes)
        running = store.queue.running_counts() if caps else {}
        paused = store.backfills.paused_backfill_ids()
        # Claimed in one statement with row locks other schedulers skip: each queued run
        # goes to exactly one of them, and never more of them than this one can drive.
        claimed = store.claims.claim_queued_runs(
            self.driving.owner,
            self.driving.lease_until(now),
            now,
            limit=room,
            caps=caps,
            pipelines=list(pipes),
            skip_pipelines=[p for p, cap in caps.items() if running.get(p, 0) >= cap],
            skip_backfills=paused,
            skip_runs=self._unstartable,
        )
        # Their task runs in one statement, not one per run (read after the claim: the
        # lease guards them from other drivers since).
        task_runs = store.runs.get_task_runs_of([r.id for r in claimed]) if claimed else {}
        for run in claimed:
            self._drive(run, leased=True, task_runs=task_runs.get(run.id))

    @action("runs.drive")
    def adopt_orphans(self, now: datetime) -> None:
        """Carry on with runs whose driver died.

        A dead driver of this host is known at once; others once their lease runs out (by
        the store's clock), whichever scheduler finds them first.
        """
        store: DrivingStore = self.ws.store
        for run in store.runs.runs_in_state(RunState.RUNNING):
            if run.id in self.active or run.id in self._unstartable:
                continue
            if run.lease_owner and owner_is_dead(run.lease_owner):
                self._say_run(f"resuming run {run.id} of {run.pipeline} (its driver died)", run)
                if self._drive(run):
                    metrics.LEASES_TAKEN_OVER.labels(run.pipeline).inc()
        for run in store.claims.claim_orphans(
            self.driving.owner,
            self.driving.lease_until(now),
            now,
            limit=self.max_runs,  # beyond max_runs if need be: a run halfway through comes first
            pipelines=list(self.ws.project.pipelines),
            skip_runs=self._unstartable,
        ):
            self._say_run(f"resuming run {run.id} of {run.pipeline}", run)
            if self._drive(run, leased=True):
                metrics.LEASES_TAKEN_OVER.labels(run.pipeline).inc()

    def _drive(
        self,
        run: RunRecord,
        *,
        leased: bool = False,
        task_runs: Sequence[TaskRunRecord] | None = None,
    ) -> bool:
        """Start driving ``run``; with ``leased`` this daemon holds its lease already (and
        ``task_runs`` may be its task runs, read since)."""
        conductor = self.conductor
        if run.id in self._unstartable or run.id in conductor.active:
            return False
        try:
            self.driving.check_environment(run)
        except OtherEnvironment as exc:
            if leased:
                self.driving.release(run)
            self._unstartable.add(run.id)
            self._say(f"cannot start run {run.id} of {run.pipeline}: {exc}; it is left {run.state}")
            log.error("run %s: %s", run.id, exc)
            return False
        try:
            pipe = self.ws.pipeline(run.pipeline)
            if not leased:
                run = self.driving.take_lease(run, wait=False)
        except Conflict:
            return False
        except ServiceError as exc:  # its pipeline is gone from the code
            self.driving.release(run)
            self._cannot_start(run, exc)
            return False
        try:
            conductor.add(self.driving.driver(run, pipe, conductor.executor), task_runs)
        except (ValueError, KeyError) as exc:
            # The code changed since the run was made (params it no longer takes, tasks
            # added or renamed): one such run must not stop the daemon and every other run.
            self.driving.release(run)
            self._cannot_start(run, exc)
            return False
        except Exception:
            self.driving.release(run)  # e.g. the store went down: another scheduler may take it
            raise
        self._say_run(f"started run {run.id} of {run.pipeline}", run)
        return True

    def _say_run(self, line: str, run: RunRecord) -> None:
        with log_context(run_id=run.id, pipeline=run.pipeline):
            self._say(line)

    def _cannot_start(self, run: RunRecord, exc: Exception) -> None:
        # Not tried again until the code is loaded again (an edit may make it fit).
        self._unstartable.add(run.id)
        why = str(exc) if not isinstance(exc, KeyError) else f"no task {exc} in the run"
        self._say(
            f"cannot start run {run.id} of {run.pipeline}: {why} "
            f"(the code changed since the run was made); it is left {run.state}"
        )
        log.error("run %s: cannot start it: %r", run.id, exc)


def _caps(pipes: Mapping[str, Pipeline]) -> dict[str, int]:
    return {
        name: pipe.automation.max_active_runs
        for name, pipe in pipes.items()
        if pipe.automation.max_active_runs is not None
    }


class NoWorkers:
    """An executor with no capacity: settles a run nobody drives (a cancel) without starting
    any task, while the driver still records every state change as usual."""

    def start(self, pipelines: Mapping[str, Pipeline]) -> None:
        pass

    def reload(self, pipelines: Mapping[str, Pipeline]) -> None:
        pass

    def retain(self, versions: Collection[str]) -> None:
        pass

    def free_slots(self) -> int:
        return 0

    def submit(self, spec: Any) -> str:
        raise RuntimeError("a canceled run starts no task")

    def kill(self, run_id: str, task_key: str, attempt: int, status: str, reason: str) -> None:
        pass

    def wait(self, timeout: float | None) -> list[Any]:
        return []

    def wake(self) -> None:
        pass  # wait() never blocks

    def shutdown(self) -> None:
        pass


__all__ = ["Fleet", "NoWorkers", "OtherEnvironment", "RunDriving"]


def _key_file(ws: Workspace) -> str | None:
    path = ws.config.secret_key_file
    return None if path is None else str(path)


def _declared(ws: Workspace) -> Declared | None:
    # The resources of the environment the workspace runs in, sent with each attempt.
    from legato.resources.opened import Declared

    tables = ws.config.resource_tables
    return Declared.of(tables, str(ws.config.root)) if tables else None


def check_lineage(ws: Workspace) -> None:
    """ServiceError when ``[lineage]`` is set but its client library is not installed: said
    before a run is taken, not when its driver is made."""
    if ws.config.lineage is None:
        return
    from legato.observability.lineage_events import LineageUnavailable, check_available

    try:
        check_available()
    except LineageUnavailable as exc:
        raise ServiceError(str(exc), "lineage") from None
