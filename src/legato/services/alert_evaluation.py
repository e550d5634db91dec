"""Deciding alerts: outbox facts and time-based conditions turned into alerts and resolves.

``Evaluator.run(ev, now)`` works inside one ``Evaluation`` (the store's transaction that one
process holds at a time), so whatever it decides (alerts opened or resolved, messages queued,
facts consumed) is committed together: a crash decides it all again, never half of it. It
reads the time only from ``now``, so tests drive SLA and freshness with an injected clock.

An alert fires once per (rule, subject) while open; a rule's first alert goes out at once and
opens a storm window of ``group_interval``: alerts raised within it are held and sent as one
``group`` message when it closes. A silenced rule's alerts are recorded, never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from legato.domain.alert_records import AlertFact, AlertRecord, AlertState, FactKind, WatchedRun
from legato.observability.alert_rules import AlertRule
from legato.observability.channels import Notice, NoticeKind
from legato.services.check_alerts import check_finding

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.store.alert_store import Evaluation

#: Conditions watched per unfinished run, whose alerts clear with it.
_RUN_WATCH = ("sla", "stuck", "queued_too_long")
#: A storm message lists at most this many of the alerts it stands for.
GROUP_ITEMS = 50


def notice_from_json(data: Mapping[str, Any]) -> Notice:
    """A Notice back from ``Notice.as_json``."""
    return Notice(
        kind=data["kind"],
        rule=data["rule"],
        condition=data["condition"],
        title=data["title"],
        dedup_key=data["dedup_key"],
        at=datetime.fromisoformat(data["at"]),
        severity=data.get("severity", "error"),
        pipeline=data.get("pipeline"),
        run_id=data.get("run_id"),
        partition=data.get("partition"),
        task=data.get("task"),
        error=data.get("error"),
        url=data.get("url"),
        details=tuple((str(k), str(v)) for k, v in (data.get("details") or {}).items()),
        items=tuple(notice_from_json(i) for i in data.get("items") or ()),
    )


def last_line(text: str | None) -> str | None:
    """The last non-empty line of an error (what a message shows)."""
    if not text:
        return None
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else None


@dataclass
class Outcome:
    """What one evaluation did: alerts raised and resolved, messages queued."""

    raised: list[str] = field(default_factory=list)  # "rule:subject"
    resolved: list[str] = field(default_factory=list)
    queued: int = 0
    facts: int = 0


@dataclass(frozen=True)
class Subject:
    """What an alert is about, with what its message says."""

    key: str
    title: str
    pipeline: str | None = None
    run_id: str | None = None
    partition: str | None = None
    task: str | None = None
    error: str | None = None
    details: tuple[tuple[str, str], ...] = ()


class Evaluator:
    """Rules over one project's pipelines; ``base_url`` makes the run links."""

    def __init__(
        self,
        rules: Mapping[str, AlertRule],
        pipelines: Mapping[str, Pipeline],
        base_url: str | None,
        *,
        watching_since: datetime | None = None,
    ) -> None:
        self.rules = rules
        self.pipelines = pipelines
        self.base_url = (base_url or "").rstrip("/") or None
        # no_scheduler is judged only once this process has watched for its `after`.
        self.watching_since = watching_since
        self.had_facts = False  # whether the pass under way had facts (runs finished)

    # -- the pass -----------------------------------------------------------------------

    def run(self, ev: Evaluation, now: datetime) -> Outcome:
        """One evaluation at ``now``: facts, time conditions, then closed storm windows."""
        out = Outcome()
        self._ev, self._now, self._out = ev, now, out
        self._silenced = ev.silenced(now)
        self._windows = ev.windows()
        self._failing_checks: set[str] | None = None  # read at the first check fact
        facts = ev.facts()
        self.had_facts = bool(facts)  # runs finished: materializations may have come
        for fact in facts:
            self._on_fact(fact, facts)
        ev.consume(facts)
        out.facts = len(facts)
        self._watch_runs(ev.unfinished_runs())
        self._freshness()
        from legato.services.asset_alerts import evaluate_asset_stale

        evaluate_asset_stale(self)
        self._no_scheduler()
        self._flush_windows()
        return out

    # What other conditions' modules (``asset_alerts``) use of the pass under way.
    @property
    def evaluation(self) -> Evaluation:
        return self._ev

    @property
    def now(self) -> datetime:
        return self._now

    def raise_alert(self, rule: AlertRule, subject: Subject) -> None:
        """Raise ``rule``'s alert about ``subject`` (once while it is open)."""
        self._raise(rule, subject)

    def resolve(self, alert: AlertRecord, why: str) -> None:
        """Resolve ``alert``, saying ``why``."""
        self._resolve(alert, why)

    def _covering(self, condition: str, pipeline: str | None) -> list[AlertRule]:
        found = []
        for rule in self.rules.values():
            if rule.condition != condition:
                continue
            if pipeline is None:
                found.append(rule)
                continue
            pipe = self.pipelines.get(pipeline)
            if rule.covers(pipeline, pipe.tags if pipe is not None else ()):
                found.append(rule)
        return found

    def _link(self, run_id: str | None) -> str | None:
        if run_id is None or self.base_url is None:
            return None
        return f"{self.base_url}/runs/{run_id}"

    def _notice(self, kind: NoticeKind, rule: AlertRule, subject: Subject) -> Notice:
        return Notice(
            kind=kind,
            rule=rule.name,
            condition=rule.condition,
            title=subject.title,
            dedup_key=f"{rule.name}:{subject.key}",
            at=self._now,
            severity=rule.severity,
            pipeline=subject.pipeline,
            run_id=subject.run_id,
            partition=subject.partition,
            task=subject.task,
            error=subject.error,
            url=self._link(subject.run_id),
            details=subject.details,
        )

    # -- raising and resolving ----------------------------------------------------------

    def _raise(self, rule: AlertRule, subject: Subject) -> None:
        ev = self._ev
        if rule.resolves and ev.find_open(rule.name, subject.key) is not None:
            return  # once per (rule, subject) while it holds
        notice = self._notice("trigger", rule, subject)
        silenced = rule.name in self._silenced
        window = self._windows.get(rule.name)
        send_now = not silenced and (window is None or window <= self._now)
        alert_id = ev.add_alert(
            rule=rule.name,
            subject=subject.key,
            condition=rule.condition,
            state=AlertState.OPEN if rule.resolves else AlertState.DONE,
            pipeline=subject.pipeline,
            run_id=subject.run_id,
            title=subject.title,
            notice=notice.as_json(),
            now=self._now,
            notified=send_now,
            silenced=silenced,
        )
        self._out.raised.append(f"{rule.name}:{subject.key}")
        if send_now:
            self._queue(rule, notice, alert_id)
            until = self._now + rule.group_interval
            ev.set_window(rule.name, until)
            self._windows[rule.name] = until

    def _resolve(self, alert: AlertRecord, why: str) -> None:
        self._ev.resolve(alert.id, self._now)
        self._out.resolved.append(f"{alert.rule}:{alert.subject}")
        rule = self.rules.get(alert.rule)
        if rule is None or alert.silenced or rule.name in self._silenced:
            return
        if not alert.notified:
            # Cleared before its storm message went: leave it out of that message.
            self._ev.mark_notified([alert.id])
            return
        trigger = notice_from_json(alert.notice)
        resolve = replace(
            trigger, kind="resolve", title=f"Resolved: {trigger.title} ({why})", at=self._now
        )
        self._queue(rule, resolve, alert.id)

    def _queue(self, rule: AlertRule, notice: Notice, alert_id: int | None) -> None:
        for channel in rule.channels:
            self._ev.add_delivery(
                rule=rule.name, channel=channel, kind=notice.kind, notice=notice.as_json(),
                now=self._now, alert_id=alert_id,
            )
            self._out.queued += 1

    def _flush_windows(self) -> None:
        for name, until in list(self._windows.items()):
            if until > self._now:
                continue
            rule = self.rules.get(name)
            held = self._ev.held(name) if rule is not None else []
            if rule is None or not held:
                self._ev.set_window(name, None)
                continue
            if name in self._silenced:  # silenced while they waited: recorded, not sent
                self._ev.mark_notified([a.id for a in held])
                self._ev.set_window(name, None)
                continue
            items = tuple(notice_from_json(a.notice) for a in held[:GROUP_ITEMS])
            more = len(held) - len(items)
            group = Notice(
                kind="group",
                rule=rule.name,
                condition=rule.condition,
                title=f"{len(held)} alerts of rule {rule.name}: {items[0].title}"
                + (f" and {len(held) - 1} more" if len(held) > 1 else ""),
                dedup_key=f"{rule.name}:group:{self._now.isoformat()}",
                at=self._now,
                severity=rule.severity,
                details=(("alerts", str(len(held))), ("not listed", str(more))),
                items=items,
            )
            self._queue(rule, group, None)
            self._ev.mark_notified([a.id for a in held])
            self._ev.set_window(name, self._now + rule.group_interval)

    # -- facts ----------------------------------------------------------------------------

    def _on_fact(self, fact: AlertFact, batch: list[AlertFact]) -> None:
        where = fact.pipeline + (f" {fact.partition}" if fact.partition else "")
        key = fact.pipeline + (f"/{fact.partition}" if fact.partition else "")
        if fact.kind is FactKind.RUN_FAILED:
            # The task that failed it, with its error, when it failed in this batch too.
            task = next(
                (f for f in batch if f.kind is FactKind.TASK_FAILED and f.run_id == fact.run_id),
                None,
            )
            subject = Subject(
                key, f"Run failed: {where}", fact.pipeline, fact.run_id, fact.partition,
                task.task_key if task else None,
                last_line(task.message if task and task.message else fact.message),
            )
            for rule in self._covering("run_failed", fact.pipeline):
                self._raise(rule, subject)
        elif fact.kind is FactKind.TASK_FAILED:
            subject = Subject(
                f"{key}:{fact.task_key}", f"Task {fact.task_key} failed for good: {where}",
                fact.pipeline, fact.run_id, fact.partition, fact.task_key,
                last_line(fact.message),
            )
            for rule in self._covering("retries_exhausted", fact.pipeline):
                self._raise(rule, subject)
        elif fact.kind is FactKind.RUN_SUCCEEDED:
            self._on_success(fact, key, where)
        elif fact.kind is FactKind.CHECK_RESULT:
            self._on_check(fact)
        elif fact.kind is FactKind.RUN_CANCELED:
            subject = Subject(fact.run_id or key, f"Run canceled: {where}", fact.pipeline,
                              fact.run_id, fact.partition, error=last_line(fact.message))
            for rule in self._covering("run_canceled", fact.pipeline):
                self._raise(rule, subject)
        else:
            condition = fact.kind.value  # backfill_finished | backfill_failed
            what = "finished" if fact.kind is FactKind.BACKFILL_FINISHED else "failed"
            subject = Subject(
                fact.backfill_id or key, f"Backfill {what}: {fact.pipeline} {fact.backfill_id}",
                fact.pipeline, details=(("runs", fact.message or ""),),
            )
            for rule in self._covering(condition, fact.pipeline):
                self._raise(rule, subject)

    def _on_check(self, fact: AlertFact) -> None:
        found = check_finding(fact)
        if self._failing_checks is None:
            # Most results pass, most of them with nothing open: that is known without a
            # query per result.
            self._failing_checks = {a.subject for a in self._ev.open_alerts("check_failed")}
        if found.passed:  # the same check passing later clears what its failure raised
            if found.key in self._failing_checks:
                self._failing_checks.discard(found.key)
                for alert in self._ev.open_alerts("check_failed"):
                    if alert.subject == found.key:
                        self._resolve(alert, f"the check passed in run {fact.run_id}")
            return
        subject = Subject(found.key, found.title, fact.pipeline, fact.run_id, fact.partition,
                          fact.task_key, last_line(found.message), found.details)
        for rule in self._covering("check_failed", fact.pipeline):
            if rule.watches_check(found.check, found.asset, found.severity):
                self._raise(rule, subject)
                self._failing_checks.add(found.key)

    def _on_success(self, fact: AlertFact, key: str, where: str) -> None:
        # A success clears the failures of its pipeline and partition.
        failures = self._ev.open_alerts("run_failed", "retries_exhausted", pipeline=fact.pipeline)
        for alert in failures:
            if (alert.condition == "run_failed" and alert.subject == key) or (
                alert.condition == "retries_exhausted" and alert.subject.startswith(key + ":")
            ):
                self._resolve(alert, f"run {fact.run_id} succeeded")
        rules = self._covering("run_recovered", fact.pipeline)
        if not rules or fact.run_id is None:
            return
        if self._ev.previous_finished(fact.pipeline, fact.run_id) == "failed":
            subject = Subject(fact.run_id, f"Run recovered: {where}", fact.pipeline,
                              fact.run_id, fact.partition)
            for rule in rules:
                self._raise(rule, subject)

    # -- time-based conditions ------------------------------------------------------------

    def _watch_runs(self, unfinished: list[WatchedRun]) -> None:
        now = self._now
        by_id = {r.id: r for r in unfinished}
        for alert in self._ev.open_alerts(*_RUN_WATCH):
            if alert.run_id is None:
                continue
            run = by_id.get(alert.run_id)
            rule = self.rules.get(alert.rule)
            if run is None:
                self._resolve(alert, "the run finished")
            elif alert.condition == "queued_too_long" and run.state != "queued":
                self._resolve(alert, "the run started")
            elif alert.condition == "stuck" and rule is not None and rule.idle is not None:
                last = _progress(run)
                if last is not None and last + rule.idle > now:
                    self._resolve(alert, "the run made progress")
        for run in unfinished:
            where = run.pipeline + (f" {run.partition}" if run.partition else "")
            for rule in self._covering("sla", run.pipeline):
                deadline = self._sla_deadline(rule, run)
                if deadline is not None and deadline <= now:
                    self._raise(rule, self._run_subject(
                        run, f"SLA missed: {where} not finished by {deadline:%Y-%m-%d %H:%M} UTC",
                    ))
            if run.state == "running":
                last = _progress(run)
                for rule in self._covering("stuck", run.pipeline):
                    if last is not None and rule.idle is not None and last + rule.idle <= now:
                        self._raise(rule, self._run_subject(
                            run, f"Run stuck: {where} has made no progress since "
                            f"{last:%H:%M:%S} UTC",
                        ))
            else:
                for rule in self._covering("queued_too_long", run.pipeline):
                    if rule.after is not None and run.created_at + rule.after <= now:
                        self._raise(rule, self._run_subject(
                            run, f"Run queued too long: {where} waits since "
                            f"{run.created_at:%H:%M:%S} UTC",
                        ))

    @staticmethod
    def _run_subject(run: WatchedRun, title: str) -> Subject:
        return Subject(run.id, title, run.pipeline, run.id, run.partition)

    def _sla_deadline(self, rule: AlertRule, run: WatchedRun) -> datetime | None:
        if rule.within is not None:
            return None if run.started_at is None else run.started_at + rule.within
        if rule.by is None:
            return None
        tick = scheduled_tick(run.pipeline, run.run_key)
        if tick is None:
            return None  # not made by a schedule: no tick to count from
        name, at = tick
        pipe = self.pipelines.get(run.pipeline)
        zone = "UTC"
        if pipe is not None:
            try:
                zone = pipe.automation.schedule(name).tz
            except Exception:  # the schedule was renamed since: its pipeline's zone
                zone = pipe.automation.tz
        return deadline_after(at, rule.by.hour, rule.by.minute, ZoneInfo(zone))

    def _freshness(self) -> None:
        now = self._now
        for rule in (r for r in self.rules.values() if r.condition == "freshness"):
            assert rule.lag is not None
            for pipe in self.pipelines.values():
                parts = pipe.automation.partitions
                windows = None if parts is None else parts.time_dimension
                if windows is None or windows is not parts:
                    continue  # only a pipeline partitioned by time windows alone
                if not rule.covers(pipe.name, pipe.tags):
                    continue
                due = windows.for_tick(now - rule.lag)  # the last window closed `lag` ago
                if not due:
                    continue
                key = due[0].key
                if key in self._ev.succeeded_partitions(pipe.name, [key]):
                    continue
                end = due[0].end
                assert end is not None
                self._raise(rule, Subject(
                    f"{pipe.name}/{key}",
                    f"Stale partition: {pipe.name} {key} has no successful run "
                    f"{_ago(now - end.astimezone(UTC))} after its window closed",
                    pipe.name, partition=key,
                ))
        for alert in self._ev.open_alerts("freshness"):
            partition = alert.notice.get("partition")
            if alert.pipeline and partition and partition in self._ev.succeeded_partitions(
                alert.pipeline, [partition]
            ):
                self._resolve(alert, "a run of the partition succeeded")

    def _no_scheduler(self) -> None:
        rules = [r for r in self.rules.values() if r.condition == "no_scheduler"]
        if not rules:
            return
        for rule in rules:
            assert rule.after is not None
            alive = self._ev.schedulers_alive_since(self._now - rule.after)
            opened = self._ev.find_open(rule.name, "schedulers")
            if alive and opened is not None:
                self._resolve(opened, "a scheduler is beating again")
            watched = self.watching_since is None or self.watching_since + rule.after <= self._now
            if not alive and watched:
                self._raise(rule, Subject(
                    "schedulers",
                    f"No scheduler alive: no heartbeat for {_ago(rule.after)}",
                ))


def _progress(run: WatchedRun) -> datetime | None:
    return max((t for t in (run.progress_at, run.started_at) if t is not None), default=None)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def scheduled_tick(pipeline: str, run_key: str | None) -> tuple[str, datetime] | None:
    """(schedule name, tick) of a run a schedule made, from its run key
    (``schedule:PIPELINE:NAME:YYYY-MM-DDTHH:MM:SSZ[:PARTITION]``); None for other runs."""
    prefix = f"schedule:{pipeline}:"
    if not run_key or not run_key.startswith(prefix):
        return None
    name, _, rest = run_key[len(prefix):].partition(":")
    try:
        tick = datetime.strptime(rest[:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return name, tick


def deadline_after(tick: datetime, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """The first ``hour:minute`` on the wall clock of ``zone`` at or after ``tick``."""
    local = tick.astimezone(zone)
    wall = local.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None)
    if wall < local.replace(tzinfo=None):
        wall += timedelta(days=1)
    return wall.replace(tzinfo=zone).astimezone(UTC)
