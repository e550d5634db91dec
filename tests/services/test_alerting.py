"""Alerts from the store's outbox and the clock: each condition raises an alert whose message
reaches a real webhook receiver; once per (rule, subject), a resolve when it clears, storms
grouped, silences kept, failed deliveries retried. The clock is injected: no waiting."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from legato.clock import ManualClock
from legato.domain.records import RunRecord
from legato.domain.states import RunState
from legato.services.door import Door
from legato.services.service_errors import ServiceError
from legato.services.workspace import Workspace
from tests.helpers import door, make_project, wait_for
from tests.observability.test_webhook_channel import Receiver

CODE = """
from legato import alert, pipeline, task
from legato.partitions import daily

@task(in_process=True)
def boom(ctx) -> None:
    if ctx.params.get("fail", True):
        raise ValueError("no rows for today")

@pipeline
def sales(fail: bool = True):
    boom()

@pipeline(tags=["finance"])
def ledger(fail: bool = True):
    boom()

@pipeline(partitions=daily(start="2026-12-01", tz="UTC"))
def daily_sales(fail: bool = True):
    boom()

@pipeline(alerts=[alert("run_failed", channels=["ops"], name="own")])
def watched(fail: bool = True):
    boom()
"""

START = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def project(tmp_path: Path, url: str, rules: str, store_url: str | None = None) -> Path:
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    extra = (
        f'{store}[web]\npublic_url = "https://legato.example"\n'
        f'[channels.ops]\nkind = "webhook"\nurl = "{url}"\n{rules}'
    )
    return make_project(tmp_path / "p", CODE, extra=extra)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver.got]


def run(d: Door, pipeline: str, *, fail: bool = True, partition: str | None = None) -> RunRecord:
    made = d.runs.create_run(pipeline, {"fail": fail}, partition=partition)
    return d.runs.execute(made.id)


def cycle(d: Door, clock: ManualClock) -> list[dict[str, Any]]:
    d.alerts.evaluate(clock())
    return [s.__dict__ for s in d.alerts.deliver(clock(), "test-owner")]


def open_ws(root: Path, clock: ManualClock) -> Workspace:
    return Workspace(root, clock=clock)


def test_a_failed_run_alerts_once_with_its_link_and_a_success_resolves_it(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        first = run(d, "sales")
        assert first.state == RunState.FAILED
        cycle(d, clock)
        (sent,) = bodies(receiver)
        assert (sent["kind"], sent["rule"], sent["pipeline"]) == ("trigger", "failures", "sales")
        assert sent["url"] == f"https://legato.example/runs/{first.id}"
        assert sent["task"] == "boom" and sent["error"] == "ValueError: no rows for today"
        clock.advance(120)
        run(d, "sales")  # fails again while the alert is open: no second message
        cycle(d, clock)
        assert len(receiver.got) == 1
        run(d, "sales", fail=False)
        cycle(d, clock)
        resolved = bodies(receiver)[1]
        assert resolved["kind"] == "resolve" and resolved["dedup_key"] == sent["dedup_key"]
        (view, *_) = d.alerts.recent()
        assert view.alert.state == "resolved"
        assert [x.state for x in view.deliveries] == ["sent", "sent"]


def test_retries_exhausted_canceled_and_recovered_runs_each_alert(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        '[alerts.gave_up]\ncondition = "retries_exhausted"\nchannels = ["ops"]\n'
        'pipelines = ["sal*"]\n'
        '[alerts.back]\ncondition = "run_recovered"\nchannels = ["ops"]\n'
        '[alerts.stopped]\ncondition = "run_canceled"\nchannels = ["ops"]\ntags = ["finance"]\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        run(d, "sales")
        run(d, "ledger")  # not covered by gave_up (neither name nor tag)
        cycle(d, clock)
        assert [(b["rule"], b["task"]) for b in bodies(receiver)] == [("gave_up", "boom")]
        run(d, "sales", fail=False)
        queued = d.runs.create_run("ledger", {"fail": False})
        d.runs.cancel(queued.id)
        cycle(d, clock)
        got = [(b["rule"], b["kind"], b["pipeline"]) for b in bodies(receiver)[1:]]
        assert ("back", "trigger", "sales") in got
        assert ("gave_up", "resolve", "sales") in got
        assert ("stopped", "trigger", "ledger") in got


def test_a_rule_declared_on_the_pipeline_covers_that_pipeline_only(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    with open_ws(project(tmp_path, receiver.url, ""), clock) as ws:
        d = door(ws)
        run(d, "sales")
        run(d, "watched")
        cycle(d, clock)
        assert [(b["rule"], b["pipeline"]) for b in bodies(receiver)] == [
            ("watched:own", "watched")
        ]


def test_a_storm_of_failures_becomes_one_group_message_per_interval(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
        'group_interval = "5m"\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        for day in range(1, 6):
            run(d, "daily_sales", partition=f"2026-12-0{day}")
        cycle(d, clock)
        assert [b["kind"] for b in bodies(receiver)] == ["trigger"]  # the first, at once
        clock.advance(299)
        cycle(d, clock)
        assert len(receiver.got) == 1  # the rest wait for the window to close
        clock.advance(1)
        cycle(d, clock)
        group = bodies(receiver)[1]
        assert group["kind"] == "group" and len(group["items"]) == 4
        assert {i["partition"] for i in group["items"]} == {f"2026-12-0{n}" for n in (2, 3, 4, 5)}


def test_five_hundred_failing_partitions_are_two_messages(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        for n in range(500):  # as a backfill's drivers record them
            failed(ws, f"r{n:04d}", "daily_sales", f"p{n}", clock())
        outcome = door(ws).alerts.evaluate(clock())
        assert outcome is not None and len(outcome.raised) == 500
        door(ws).alerts.deliver(clock(), "o")
        clock.advance(60)
        cycle(door(ws), clock)
        first, group = bodies(receiver)
        assert (first["kind"], group["kind"]) == ("trigger", "group")
        assert group["details"] == {"alerts": "499", "not listed": "449"}
        assert len(group["items"]) == 50 and group["title"].startswith("499 alerts of rule")


def test_a_backfill_that_finishes_with_failed_runs_alerts_with_its_counts(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    from legato.scheduler.tick import Scheduler

    rules = (
        '[alerts.done]\ncondition = "backfill_finished"\nchannels = ["ops"]\n'
        '[alerts.broken]\ncondition = "backfill_failed"\nchannels = ["ops"]\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        backfill = d.automation.create_backfill("daily_sales", keys=["2026-12-01", "2026-12-02"])
        scheduler = Scheduler(d.automation)
        scheduler.tick(clock())  # makes its runs
        for queued in ws.store.runs.runs_in_state("queued"):
            d.runs.execute(queued.id)
        scheduler.tick(clock())  # sees them finished: the backfill completes
        cycle(d, clock)
        (sent,) = bodies(receiver)
        assert (sent["rule"], sent["pipeline"]) == ("broken", "daily_sales")
        assert backfill.id in sent["title"] and sent["details"]["runs"] == "2 runs: 2 failed"
        fixed = d.automation.create_backfill(
            "daily_sales", keys=["2026-12-01", "2026-12-02"], params={"fail": False}
        )
        scheduler.tick(clock())
        for queued in ws.store.runs.runs_in_state("queued"):
            d.runs.execute(queued.id)
        scheduler.tick(clock())
        cycle(d, clock)
        done = bodies(receiver)[1]
        assert (done["rule"], done["details"]["runs"]) == ("done", "2 runs: 2 succeeded")
        assert fixed.id in done["title"]


def test_a_silenced_rule_records_alerts_but_sends_nothing_until_unsilenced(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        silence = d.alerts.silence("failures", "2h")
        assert silence.until == START + timedelta(hours=2)
        assert [s.rule for s in d.alerts.silences()] == ["failures"]
        run(d, "sales")
        cycle(d, clock)
        assert receiver.got == []
        (view,) = d.alerts.recent()
        assert view.alert.silenced and view.deliveries == ()
        with pytest.raises(ServiceError, match="no alert rule named 'nope'"):
            d.alerts.silence("nope", "1h")
        assert d.alerts.unsilence("failures")
        run(d, "ledger")
        cycle(d, clock)
        assert [b["pipeline"] for b in bodies(receiver)] == ["ledger"]
        # Silenced while alerts wait for their group message: they are not sent either.
        run(d, "watched")  # its own rule
        run(d, "sales", fail=False)
        run(d, "sales")
        cycle(d, clock)
        d.alerts.silence("failures", "1h")
        clock.advance(120)
        cycle(d, clock)
        assert [b["pipeline"] for b in bodies(receiver)] == ["ledger", "watched"]


def test_a_failed_delivery_is_retried_with_backoff_once_the_receiver_is_back(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        receiver.status = 503
        run(d, "sales")
        (tried,) = cycle(d, clock)
        assert "503" in tried["error"] and tried["retry_at"] is not None
        assert cycle(d, clock) == []  # not due yet
        receiver.status = 200
        clock.advance(2)
        (again,) = cycle(d, clock)
        assert again["error"] is None
        assert len(receiver.got) == 2  # the failed try, then the one that arrived
        (view,) = d.alerts.recent()
        (delivery,) = view.deliveries
        assert (delivery.state, delivery.attempts) == ("sent", 2)


def test_sla_within_a_duration_and_by_a_time_of_day_from_the_clock(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        '[alerts.slow]\ncondition = "sla"\nwithin = "30m"\nchannels = ["ops"]\n'
        'pipelines = ["sales"]\n'
        '[alerts.morning]\ncondition = "sla"\nby = "06:00"\nchannels = ["ops"]\n'
        'pipelines = ["ledger"]\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        started = running(ws, "r-sla-1", "sales", START)
        scheduled = running(
            ws, "r-sla-2", "ledger", START, run_key="schedule:ledger:nightly:2026-12-06T02:00:00Z"
        )
        clock.advance(29 * 60)
        cycle(d, clock)
        assert receiver.got == []
        clock.advance(60)
        cycle(d, clock)
        assert [(b["rule"], b["run_id"]) for b in bodies(receiver)] == [("slow", started.id)]
        clock.advance(150 * 60)  # 06:00 UTC: the ledger run is not finished yet
        cycle(d, clock)
        assert [(b["rule"], b["run_id"]) for b in bodies(receiver)][1:] == [
            ("morning", scheduled.id)
        ]
        finish(ws, started.id, clock())
        cycle(d, clock)
        last = bodies(receiver)[-1]
        assert (last["kind"], last["rule"]) == ("resolve", "slow")


def test_a_stale_partition_raises_freshness_and_a_success_resolves_it(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = '[alerts.stale]\ncondition = "freshness"\nlag = "2h"\nchannels = ["ops"]\n'
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        for day in range(1, 5):  # every day up to 2026-12-04 is there
            run(d, "daily_sales", partition=f"2026-12-0{day}")
        # 03:00 on the 6th: the 5th closed 3 h ago, more than the 2 h lag.
        cycle(d, clock)
        (sent,) = bodies(receiver)
        assert (sent["rule"], sent["partition"]) == ("stale", "2026-12-05")
        clock.advance(3600)
        cycle(d, clock)
        assert len(receiver.got) == 1  # once per partition


def test_stuck_queued_and_no_scheduler_from_the_clock(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        '[alerts.stuck]\ncondition = "stuck"\nidle = "10m"\nchannels = ["ops"]\n'
        '[alerts.waiting]\ncondition = "queued_too_long"\nafter = "5m"\nchannels = ["ops"]\n'
        '[alerts.nobody]\ncondition = "no_scheduler"\nafter = "1m"\nchannels = ["ops"]\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        ws.store.daemons.beat(daemon_record(clock()))
        stuck = running(ws, "r-stuck", "sales", START)
        queued = d.runs.create_run("ledger", {"fail": False})
        d.alerts.evaluate(clock(), watching_since=clock())
        clock.advance(5 * 60)
        d.alerts.evaluate(clock(), watching_since=START)
        d.alerts.deliver(clock(), "o")
        assert [b["rule"] for b in bodies(receiver)] == ["waiting", "nobody"]
        assert bodies(receiver)[0]["run_id"] == queued.id
        clock.advance(5 * 60)
        d.alerts.evaluate(clock(), watching_since=START)
        d.alerts.deliver(clock(), "o")
        assert [(b["rule"], b["run_id"]) for b in bodies(receiver)][2:] == [("stuck", stuck.id)]
        ws.store.daemons.beat(daemon_record(clock()))
        d.alerts.evaluate(clock(), watching_since=START)
        d.alerts.deliver(clock(), "o")
        assert [(b["rule"], b["kind"]) for b in bodies(receiver)][3:] == [("nobody", "resolve")]


def test_a_test_message_says_what_arrived_and_what_failed(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = (
        '[channels.dead]\nkind = "webhook"\nurl = "http://127.0.0.1:9/none"\n'
        '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops", "dead"]\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        ok, failed = door(ws).alerts.test("failures")
        assert (ok.channel, ok.error) == ("ops", None)
        assert failed.channel == "dead" and failed.error
        (sent,) = bodies(receiver)
        assert sent["kind"] == "test" and sent["url"] == "https://legato.example/alerts"


def test_an_unknown_channel_in_a_rule_is_a_configuration_error(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    rules = '[alerts.failures]\ncondition = "run_failed"\nchannels = ["pager"]\n'
    with (
        open_ws(project(tmp_path, receiver.url, rules), clock) as ws,
        pytest.raises(ServiceError, match="no channel named 'pager'"),
    ):
        door(ws).alerts.rules()


# -- set-up helpers: runs in the states the time-based conditions look at ---------------------


def running(
    ws: Workspace, run_id: str, pipeline: str, started: datetime, run_key: str | None = None
) -> RunRecord:
    record = RunRecord(
        id=run_id, pipeline=pipeline, state=RunState.RUNNING, params={}, partition=None,
        code_version="v", created_at=started, started_at=started, run_key=run_key,
    )
    return ws.store.runs.create_run(record)


def finish(
    ws: Workspace, run_id: str, now: datetime, state: RunState = RunState.SUCCEEDED
) -> None:
    """End a running run as its driver would: the step that records it."""
    from legato.domain.records import Changes, NewEvent

    run = ws.store.runs.get_run(run_id)
    assert ws.store.runs.acquire_lease(run_id, "t", now + timedelta(minutes=1), now)
    ws.store.runs.apply(
        Changes(
            run_id, "t", now + timedelta(minutes=1),
            run=replace(run, state=state, finished_at=now),
            events=[NewEvent(run_id, None, "run_state", "running", state, now, "boom")],
        )
    )


def failed(ws: Workspace, run_id: str, pipeline: str, partition: str, now: datetime) -> None:
    record = RunRecord(
        id=run_id, pipeline=pipeline, state=RunState.RUNNING, params={}, partition=partition,
        code_version="v", created_at=now, started_at=now,
    )
    ws.store.runs.create_run(record)
    finish(ws, run_id, now, RunState.FAILED)


def daemon_record(now: datetime) -> Any:
    from legato.domain.records import DaemonRecord

    return DaemonRecord("sched-1", "scheduler", "h", 1, "0", None, now, now)


def test_two_schedulers_on_postgresql_send_each_alert_exactly_once(
    tmp_path: Path, receiver: Receiver, pg_url: str
) -> None:
    import threading

    rules = (
        '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
        'group_interval = "1s"\n'
        '[alerts.canceled]\ncondition = "run_canceled"\nchannels = ["ops"]\n'
        'group_interval = "1s"\n'
    )
    root = project(tmp_path, receiver.url, rules, store_url=pg_url)
    first, second = Workspace(root), Workspace(root)
    try:
        d = door(first)
        expected = set()
        for day in range(1, 6):
            failed = run(d, "daily_sales", partition=f"2026-12-0{day}")
            expected.add(f"failures:daily_sales/{failed.partition}")
            canceled = d.runs.create_run("sales", {"fail": False})
            d.runs.cancel(canceled.id)
            expected.add(f"canceled:{canceled.id}")
        stop = threading.Event()
        errors: list[BaseException] = []

        def scheduler(ws: Workspace, owner: str) -> None:
            alerts = door(ws).alerts
            try:
                while not stop.is_set():
                    alerts.evaluate(ws.clock())
                    alerts.deliver(ws.clock(), owner)
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)

        threads = [
            threading.Thread(target=scheduler, args=(ws, f"s{n}"))
            for n, ws in enumerate((first, second))
        ]
        for t in threads:
            t.start()

        def keys() -> list[str]:
            out = []
            for body in bodies(receiver):
                out += [i["dedup_key"] for i in body["items"]] or [body["dedup_key"]]
            return out

        try:
            wait_for(lambda: set(keys()) >= expected or bool(errors), timeout=60,
                     what="every alert delivered")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert errors == []
        assert sorted(keys()) == sorted(expected)  # each once, by one of the two
    finally:
        first.close()
        second.close()


def test_a_channel_secret_is_read_from_legatos_encrypted_secrets(
    tmp_path: Path, receiver: Receiver, clock: ManualClock
) -> None:
    import hashlib
    import hmac

    rules = (
        '[channels.signed]\nkind = "webhook"\n'
        f'url = "{receiver.url}"\nsecret = {{ secret = "hook_key" }}\n'
        '[alerts.failures]\ncondition = "run_failed"\nchannels = ["signed"]\n'
    )
    with open_ws(project(tmp_path, receiver.url, rules), clock) as ws:
        d = door(ws)
        d.secrets.set("hook_key", "k3y-from-the-store")
        run(d, "sales")
        cycle(d, clock)
        ((headers, body),) = receiver.got
        signed = hmac.new(
            b"k3y-from-the-store", headers["X-Legato-Timestamp"].encode() + b"." + body,
            hashlib.sha256,
        ).hexdigest()
        assert headers["X-Legato-Signature"] == f"sha256={signed}"
