"""What retention removes besides runs: trigger events once their run is gone (a file
trigger's stay: they are what tells a file already taken), and the audit trail's oldest rows
after ``[retention] audit``, the chain still checkable. Once per backend, and the defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legato.clock import ManualClock
from legato.config import ConfigError, load_config
from legato.domain.records import NewTriggerEvent
from legato.services.retention_service import Policy
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door, make_project

CODE = """
from legato import pipeline, task
from legato.triggers import on_file, webhook


@task(in_process=True)
def take(label: str) -> str:
    return label


@pipeline(triggers=[webhook("hook")])
def hooked(label: str = "none"):
    take(label)


@pipeline(triggers=[on_file("inbox/*.csv", every="1h")])
def arrivals(path: str = "none"):
    take(path)
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
MONTH = Policy.of(timedelta(days=30), audit=timedelta(days=30))


@pytest.fixture(params=BACKENDS)
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Workspace]:
    extra = f'\n[store]\nurl = "{store_url_for(request.param)}"\n'
    opened = Workspace(make_project(tmp_path / "proj", CODE, extra=extra), clock=ManualClock(T0))
    yield opened
    opened.close()


def _event(key: str, trigger: str = "hook", run_id: str | None = None) -> NewTriggerEvent:
    pipeline = "hooked" if trigger == "hook" else "arrivals"
    status = "failed" if run_id is None else "run_created"
    return NewTriggerEvent(pipeline, trigger, key, T0, status, run_id, None)


def test_trigger_events_go_with_their_runs_but_a_file_triggers_stay(ws: Workspace) -> None:
    runs = door(ws).runs
    old = runs.run_pipeline("hooked", {"label": "old"}).id
    ws.clock.advance(60)  # type: ignore[attr-defined]
    kept = runs.run_pipeline("hooked", {"label": "newest"}).id  # the newest: always kept
    triggers = ws.store.triggers
    for event in (
        _event("no-run"), _event("old-run", run_id=old), _event("kept-run", run_id=kept),
        _event("inbox/a.csv", trigger="file"),
    ):
        assert triggers.record_trigger_event(event)
    ws.clock.advance(40 * DAY.total_seconds())  # type: ignore[attr-defined]
    dry = door(ws).retention.prune(MONTH, dry_run=True)
    assert dry.trigger_events == 1  # the old run is still there in a dry run
    report = door(ws).retention.prune(MONTH)
    assert report.removed.runs == 1 and report.trigger_events == 2
    left = {e.event_key for e in triggers.trigger_events(limit=10)}
    assert left == {"kept-run", "inbox/a.csv"}
    # A file still in the inbox is still known as taken.
    assert triggers.seen_event_keys("arrivals", "file", ["inbox/a.csv"]) == {"inbox/a.csv"}


def test_the_audit_trails_oldest_rows_go_and_the_chain_holds(ws: Workspace) -> None:
    runs = door(ws).runs
    for _ in range(3):
        runs.run_pipeline("hooked", {})  # each launch is audited
        ws.clock.advance(60)  # type: ignore[attr-defined]
    audit = ws.store.audit
    first = audit.entries(newest_first=False)
    assert len(first) == 3
    ws.clock.advance(40 * DAY.total_seconds())  # type: ignore[attr-defined]
    runs.run_pipeline("hooked", {})
    assert door(ws).retention.prune(MONTH, dry_run=True).audit_entries == 3
    report = door(ws).retention.prune(MONTH)
    assert report.audit_entries == 3
    rows = audit.entries(newest_first=False)
    assert [r.seq for r in rows][:1] == [4]  # the day-40 launch first
    pruned = [r for r in rows if r.action == "audit.pruned"]
    assert [(r.detail["removed"], r.detail["tail_seq"]) for r in pruned] == [(3, 3)]
    assert audit.verify() is None
    # The next pass finds nothing older: no row is added.
    assert door(ws).retention.prune(MONTH).audit_entries == 0
    assert len(audit.entries()) == len(rows) + 1  # the prune command's own row


def test_the_audit_trail_is_kept_a_year_or_as_long_as_runs(tmp_path: Path) -> None:
    assert Policy.of(timedelta(days=30)).audit == timedelta(days=365)
    assert Policy.of(timedelta(days=400)).audit == timedelta(days=400)
    assert Policy.of(timedelta(days=30), audit=timedelta(days=7)).audit == timedelta(days=7)
    root = make_project(tmp_path / "p", CODE, extra='\n[retention]\naudit = "90d"\n')
    with pytest.raises(ConfigError, match="audit needs"):
        load_config(root)
    (root / "legato.toml").write_text(
        (root / "legato.toml").read_text().replace('audit = "90d"', 'runs = "7d"\naudit = "90d"')
    )
    assert load_config(root).keep_audit == 90 * 24 * 3600
