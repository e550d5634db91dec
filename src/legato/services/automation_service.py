"""Schedules, triggers, partitions, backfills (``automation_backfills.py``) and the run queue,
for every front end.

The daemon (``legato.scheduler``) creates runs through :meth:`Automation.fire`; the CLI (and
later the API) list and change things through the rest. Nothing here sleeps or starts runs.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from legato.domain.states import RunState
from legato.observability import metrics
from legato.security.tokens import hash_secret
from legato.services.automation_backfills import Backfills
from legato.services.gate import action
from legato.services.run_creation import record_run
from legato.services.secrets_service import hide_secret_params
from legato.services.service_errors import (
    BadRequest,
    Conflict,
    NotFoundError,
    Unauthenticated,
)

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.domain.records import RunRecord, TriggerState

#: Characters of a webhook's Idempotency-Key at most.
MAX_EVENT_KEY = 500


def _same_token(given: str, expected_hash: str) -> bool:
    """Whether ``given`` is the secret whose SHA-256 is stored, in time that does not tell how
    much of it matched. A caller may send any header bytes at all: they are hashed as sent."""
    digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()
    return secrets.compare_digest(digest.encode(), expected_hash.encode())


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as the operator sees it."""

    pipeline: str
    name: str
    expression: str
    tz: str
    catchup: str
    paused: bool
    last_tick: datetime | None
    next_tick: datetime | None


@dataclass(frozen=True)
class TriggerView:
    """A trigger as the operator sees it."""

    pipeline: str
    name: str
    kind: str
    paused: bool
    detail: dict[str, Any]
    has_token: bool  # a webhook whose token was made (only its hash is kept)


@dataclass(frozen=True)
class PartitionView:
    """One partition of a pipeline and the state of its newest run."""

    key: str
    state: str  # "never run" | a run state
    run_id: str | None


@dataclass(frozen=True)
class TriggerEventView:
    """An event a trigger saw: the run it made, or why it was refused.

    A refused event (a message that is not JSON, params the pipeline refuses) was
    acknowledged and made no run: this is the only place it is kept.
    """

    id: int
    pipeline: str
    trigger: str
    event_key: str  # a stream message id, a file path, an idempotency key
    received_at: datetime
    refused: bool
    run_id: str | None
    reason: str | None


class Automation(Backfills):
    """Operations on a workspace's automation (see the module docstring), for one actor."""

    # -- runs from events -----------------------------------------------------------------

    def _for_audit(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return hide_secret_params(self.ws, args, kwargs)

    @action("runs.trigger", command=True)
    def fire(
        self,
        pipeline: str,
        *,
        run_key: str,
        origin: str,
        params: Mapping[str, Any] | None = None,
        partition: str | None = None,
        priority: int | None = None,
        backfill_id: str | None = None,
        trigger: str | None = None,
        event_keys: Sequence[str] = (),
    ) -> tuple[RunRecord, bool]:
        """Create the run for an event exactly once: (run, True) or (the earlier run, False).

        ``event_keys`` are recorded as the trigger's events in the same transaction as the
        run, so a redelivered event is recognised even when it lands in another batch.
        Raises ServiceError for params or a partition the pipeline does not accept.
        """
        from legato.domain.records import DuplicateRun, NewTriggerEvent

        self._sight().check(pipeline)
        now = self._now()
        events = (
            [NewTriggerEvent(pipeline, trigger, k, now, "run_created") for k in event_keys]
            if trigger is not None
            else []
        )
        try:
            run = record_run(
                self.ws,
                pipeline,
                params,
                partition=partition,
                run_key=run_key,
                origin=origin,
                priority=priority,
                backfill_id=backfill_id,
                trigger_events=events,
            )[0]
        except DuplicateRun as dup:
            return dup.existing, False
        return run, True

    @action("runs.trigger")
    def check_webhook(self, pipeline: str, trigger: str, token: str) -> None:
        """Raise NotFoundError (no such webhook) or Unauthenticated (missing or wrong token).

        A front end asks this before it reads a call's body, so a caller without the token
        cannot make the server read (and hold) anything.
        """
        self._webhook_state(pipeline, trigger, token)

    def _webhook_state(self, pipeline: str, trigger: str, token: str) -> TriggerState:
        pipe = self.ws.project.pipelines.get(pipeline)
        if not self._sight().covers(pipeline):
            pipe = None
        trig = None
        if pipe is not None:
            trig = next(
                (t for t in pipe.automation.triggers if t.name == trigger and t.kind == "webhook"),
                None,
            )
        if pipe is None or trig is None:
            raise NotFoundError(f"no webhook trigger {trigger!r} on pipeline {pipeline!r}")
        state = self.store.triggers.trigger_states().get((pipeline, trigger))
        if state is None or not state.token:
            raise Unauthenticated(
                f"webhook {trigger!r} of pipeline {pipeline!r} has no token yet: an admin "
                f"makes one with `legato triggers token {pipeline} {trigger}`"
            )
        if not _same_token(token, state.token):
            raise Unauthenticated("missing or wrong token for this webhook")
        return state

    @action("runs.trigger", command=True)
    def fire_webhook(
        self, pipeline: str, trigger: str, token: str, body: bytes, key: str
    ) -> tuple[RunRecord, bool]:
        """A webhook call: check its token, then make the run for ``key`` once.

        ``body`` is the JSON object of params. Raises NotFoundError (no such webhook),
        Unauthenticated (missing or wrong token), BadRequest (unusable key or body), Conflict
        (paused) and ServiceError (params the pipeline refuses).
        """
        received = self.ws.clock()
        state = self._webhook_state(pipeline, trigger, token)
        if len(key) > MAX_EVENT_KEY or "\x00" in key:
            # It is stored in a unique index, which holds keys of a few kilobytes at most.
            raise BadRequest(
                f"the Idempotency-Key must be text of at most {MAX_EVENT_KEY} characters"
            )
        if state.paused:
            raise Conflict(f"webhook {trigger!r} of pipeline {pipeline!r} is paused")
        try:
            params = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(params, dict):
            raise BadRequest(
                f"the body must be a JSON object of params, not {type(params).__name__}"
            )
        run, new = self.fire(
            pipeline,
            run_key=f"trigger:{pipeline}:{trigger}:{key}",
            origin=f"trigger:{trigger}",
            params=params,
            trigger=trigger,
            event_keys=[key],
        )
        if new:  # from the call's arrival to its run recorded
            lag = (self.ws.clock() - received).total_seconds()
            metrics.TRIGGER_LAG.labels(pipeline, trigger).observe(max(0.0, lag))
        return run, new

    @action("triggers.record", command=True)
    def record_failed_event(
        self, pipeline: str, trigger: str, event_key: str, message: str
    ) -> None:
        """Keep an event that could not make a run, with why (the listener carries on)."""
        from legato.domain.records import NewTriggerEvent

        self._sight().check(pipeline)
        self.store.triggers.record_trigger_event(
            NewTriggerEvent(pipeline, trigger, event_key, self._now(), "failed", None, message)
        )

    @action("runs.create", command=True)
    def submit(
        self,
        pipeline: str,
        params: Mapping[str, Any] | None = None,
        *,
        partition: str | None = None,
        priority: int | None = None,
        from_text: bool = False,
    ) -> RunRecord:
        """Queue a run for the daemon to start."""
        self._sight().check(pipeline)
        return record_run(
            self.ws, pipeline, params, partition=partition, priority=priority, from_text=from_text
        )[0]

    # -- schedules ------------------------------------------------------------------------

    @action("schedules.read")
    def schedules(self) -> list[ScheduleView]:
        """Every schedule of every pipeline, with its state in the store."""
        states = self.store.schedules.schedule_states()
        now = self._now()
        out = []
        for pipe in self._sight().visible():
            for sched in pipe.automation.schedules:
                name = sched.name or "schedule"
                st = states.get((pipe.name, name))
                cursor = st.cursor if st is not None and st.cursor is not None else now
                paused = st.paused if st is not None else False
                out.append(
                    ScheduleView(
                        pipe.name,
                        name,
                        sched.expression,
                        sched.tz,
                        sched.catchup,
                        paused,
                        st.cursor if st is not None else None,
                        None if paused else sched.next_after(max(cursor, now)),
                    )
                )
        return out

    def _schedule_names(self, pipe: Pipeline, name: str | None) -> list[str]:
        names = [s.name or "schedule" for s in pipe.automation.schedules]
        if not names:
            raise NotFoundError(f"pipeline {pipe.name!r} has no schedule")
        if name is None:
            return names
        if name not in names:
            raise NotFoundError(
                f"pipeline {pipe.name!r} has no schedule {name!r} (schedules: {', '.join(names)})"
            )
        return [name]

    @action("schedules.pause", command=True)
    def set_schedule_paused(self, pipeline: str, paused: bool, name: str | None = None) -> None:
        """Pause or unpause a pipeline's schedules (one of them with ``name``).

        Unpausing starts from now: ticks that fell while paused are not caught up.
        """
        pipe = self._sight().pipeline(pipeline)
        now = self._now()
        for n in self._schedule_names(pipe, name):
            self.store.schedules.set_schedule_state(
                pipe.name, n, now, paused=paused, cursor=None if paused else now
            )

    # -- triggers -------------------------------------------------------------------------

    @action("triggers.prepare", command=True)
    def ensure_triggers(self) -> None:
        """Give every trigger its row in the store (a webhook has no token until
        ``webhook_token`` makes one)."""
        now = self._now()
        for pipe in self.ws.project.pipelines.values():
            for trig in pipe.automation.triggers:
                self.store.triggers.ensure_trigger(pipe.name, trig.name, trig.kind, now)

    @action("triggers.token", command=True)
    def webhook_token(self, pipeline: str, trigger: str) -> str:
        """A new secret token for the webhook ``trigger`` of ``pipeline``, returned once: only
        its SHA-256 is kept, and the token it replaces stops working at once."""
        pipe = self.ws.project.pipelines.get(pipeline)
        if pipe is None or not any(
            t.name == trigger and t.kind == "webhook" for t in pipe.automation.triggers
        ):
            raise NotFoundError(f"no webhook trigger {trigger!r} on pipeline {pipeline!r}")
        self.ensure_triggers()
        token = secrets.token_urlsafe(32)
        self.store.triggers.set_trigger_state(
            pipeline, trigger, self._now(), token=hash_secret(token)
        )
        return token

    @action("triggers.read")
    def triggers(self) -> list[TriggerView]:
        """Every trigger of every pipeline, with its state."""
        states = self.store.triggers.trigger_states()
        pipes = self.ws.project.pipelines.values()
        if any((p.name, t.name) not in states for p in pipes for t in p.automation.triggers):
            # Only then a write: pages read this on every view.
            self.ensure_triggers()
            states = self.store.triggers.trigger_states()
        out = []
        for pipe in self._sight().visible():
            for trig in pipe.automation.triggers:
                st = states[(pipe.name, trig.name)]
                out.append(
                    TriggerView(
                        pipe.name,
                        trig.name,
                        trig.kind,
                        st.paused,
                        trig.describe(),
                        bool(st.token),
                    )
                )
        return out

    @action("triggers.read")
    def trigger_events(
        self,
        pipeline: str,
        trigger: str | None = None,
        *,
        refused_only: bool = False,
        limit: int = 50,
    ) -> list[TriggerEventView]:
        """A pipeline's trigger events (one trigger's with ``trigger``), newest first."""
        pipe = self._sight().pipeline(pipeline)
        names = [t.name for t in pipe.automation.triggers]
        if trigger is not None and trigger not in names:
            raise NotFoundError(
                f"pipeline {pipe.name!r} has no trigger {trigger!r} "
                f"(triggers: {', '.join(names) or 'none'})"
            )
        found = self.store.triggers.trigger_events(
            pipeline=pipe.name,
            trigger=trigger,
            status="failed" if refused_only else None,
            limit=max(1, limit),
        )
        return [
            TriggerEventView(
                e.id,
                e.pipeline,
                e.trigger,
                e.event_key,
                e.received_at,
                e.status == "failed",
                e.run_id,
                e.message,
            )
            for e in found
        ]

    @action("triggers.pause", command=True)
    def set_trigger_paused(self, pipeline: str, name: str, paused: bool) -> None:
        """Pause or unpause one trigger of a pipeline."""
        pipe = self._sight().pipeline(pipeline)
        names = [t.name for t in pipe.automation.triggers]
        if name not in names:
            raise NotFoundError(
                f"pipeline {pipe.name!r} has no trigger {name!r} "
                f"(triggers: {', '.join(names) or 'none'})"
            )
        self.ensure_triggers()
        self.store.triggers.set_trigger_state(pipe.name, name, self._now(), paused=paused)

    # -- partitions -----------------------------------------------------------------------

    @action("partitions.read")
    def partitions(self, pipeline: str) -> list[PartitionView]:
        """Each partition of the pipeline that exists now, oldest first, with its state."""
        pipe = self._sight().pipeline(pipeline)
        parts = pipe.automation.partitions
        if parts is None:
            raise NotFoundError(f"pipeline {pipe.name!r} has no partitions")
        newest = self.store.backfills.partition_states(pipe.name)
        never = ("never run", None)
        return [PartitionView(key, *newest.get(key, never)) for key in parts.keys(self._now())]

    # -- the queue ------------------------------------------------------------------------

    @action("queue.read")
    def queue(self) -> list[RunRecord]:
        """Queued runs in the order the daemon will start them."""
        return list(self.store.queue.queued_runs(pipelines=self._sight().pipelines()))

    @action("queue.move", command=True)
    def move(self, run_id: str, to: str) -> RunRecord:
        """Move a queued run to the "top" or "bottom" of the queue."""
        run = self.store.runs.find_run(run_id, pipelines=self._sight().pipelines())
        if run.state != RunState.QUEUED:
            raise Conflict(f"run {run.id} is {run.state}; only queued runs can be moved")
        return self.store.queue.move_in_queue(run.id, to=to)
