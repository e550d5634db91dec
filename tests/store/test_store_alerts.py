"""The alert outbox and deliveries: facts written in the driver's step or not at all, and a
delivery claimed by one sender at a time (taken over once its lease runs out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from legato.domain.alert_records import DeliveryState, FactKind
from legato.domain.records import Changes, LeaseLost, NewEvent
from legato.domain.states import RunState, TaskState
from legato.store.store import Store
from tests.store.store_testkit import T0, Records

MIN = timedelta(minutes=1)
DAY = timedelta(days=1)


def _facts(store: Store) -> list[tuple[str, str, str | None, str | None, str | None]]:
    with store.alerts.evaluation() as ev:
        assert ev is not None
        return [(f.kind.value, f.pipeline, f.run_id, f.task_key, f.partition) for f in ev.facts()]


def test_a_finished_run_and_a_task_failed_for_good_are_facts_of_the_same_step(
    store: Store, rec: Records
) -> None:
    run = rec.run("sales", partition="2026-12-05")
    store.runs.create_run(run, [rec.task(run, "load")])
    assert store.runs.acquire_lease(run.id, "driver", T0 + MIN, T0)
    t = rec.tick()
    with pytest.raises(LeaseLost):  # a driver that lost its lease raises nothing either
        store.runs.apply(
            Changes(run.id, "thief", t + MIN, run=replace(run, state=RunState.FAILED),
                    events=[NewEvent(run.id, None, "run_state", "running", "failed", t)])
        )
    assert _facts(store) == []
    store.runs.apply(
        Changes(
            run.id, "driver", t + MIN,
            run=replace(run, state=RunState.FAILED, finished_at=t, error="1 task failed"),
            events=[
                NewEvent(run.id, "load", "task_state", "running", TaskState.FAILED, t, "boom"),
                NewEvent(run.id, None, "run_state", "running", RunState.FAILED, t, "1 failed"),
                NewEvent(run.id, "load", "task_state", "queued", "running", t),  # no fact
            ],
        )
    )
    assert _facts(store) == [
        (FactKind.TASK_FAILED.value, "sales", run.id, "load", "2026-12-05"),
        (FactKind.RUN_FAILED.value, "sales", run.id, None, "2026-12-05"),
    ]


def test_a_delivery_is_claimed_by_one_sender_until_its_lease_runs_out(store: Store) -> None:
    notice = {"kind": "test", "title": "t"}
    made = store.alerts.add_delivery(rule="r", channel="ops", kind="test", notice=notice, now=T0)
    (mine,) = store.alerts.claim_deliveries("one", T0, MIN)
    assert (mine.id, mine.attempts, mine.state) == (made, 1, DeliveryState.SENDING)
    assert store.alerts.claim_deliveries("two", T0 + MIN / 2, MIN) == []
    (taken,) = store.alerts.claim_deliveries("two", T0 + 2 * MIN, MIN)  # "one" died
    assert taken.attempts == 2
    assert not store.alerts.finish_delivery(made, "one", T0 + 2 * MIN)  # too late
    assert store.alerts.finish_delivery(made, "two", T0 + 2 * MIN, error="503", retry_at=T0)
    again = store.alerts.get_delivery(made)
    assert (again.state, again.last_error) == (DeliveryState.PENDING, "503")
    (last,) = store.alerts.claim_deliveries("two", T0 + 3 * MIN, MIN)
    assert store.alerts.finish_delivery(last.id, "two", T0 + 3 * MIN)
    assert store.alerts.get_delivery(made).state == DeliveryState.SENT
    assert store.alerts.claim_deliveries("one", T0 + 9 * MIN, MIN) == []


def test_one_evaluation_at_a_time_on_postgresql(pg_store: Store) -> None:
    with pg_store.alerts.evaluation() as first:
        assert first is not None
        with pg_store.alerts.evaluation() as second:
            assert second is None  # the other process's pass decides for both


def test_alerts_that_ended_long_ago_are_forgotten_with_their_messages(store: Store) -> None:
    from legato.domain.alert_records import AlertState

    def add(subject: str, state: AlertState, at: datetime) -> int:
        with store.alerts.evaluation() as ev:
            assert ev is not None
            made = ev.add_alert(
                rule="r", subject=subject, condition="run_canceled",
                state=AlertState.OPEN if state is AlertState.RESOLVED else state,
                pipeline="p", run_id=None, title=subject, notice={}, now=at, notified=True,
                silenced=False,
            )
            ev.add_delivery(rule="r", channel="ops", kind="trigger", notice={}, now=at,
                            alert_id=made)
            if state is AlertState.RESOLVED:
                ev.resolve(made, at)
            return made

    add("old", AlertState.DONE, T0)
    add("old_resolved", AlertState.RESOLVED, T0)
    still_open = add("open", AlertState.OPEN, T0)
    recent = add("recent", AlertState.DONE, T0 + 40 * DAY)
    assert store.alerts.prune(T0 + 30 * DAY) == 2
    assert sorted(a.id for a in store.alerts.list_alerts()) == [still_open, recent]
    assert {d.alert_id for d in store.alerts.recent_deliveries()} == {still_open, recent}
