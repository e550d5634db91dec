"""A run's task table and timeline, a page at a time: the tasks that want attention first
(failed, then running), filtered by state and by a part of their key, each page a slice the
page's script appends as the user scrolls (or a "more" link follows, without the script).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from legato.domain.states import TaskState
from legato.web.gantt import Bar, render_gantt
from legato.web.views import q

if TYPE_CHECKING:
    from legato.domain.records import TaskRunRecord
    from legato.services.catalog import RunDetail

#: Rows a page of the table or the timeline holds unless the URL asks for another number.
PAGE = 100
MAX_PAGE = 1000
_ATTENTION = {"failed": 0, "running": 1, "up_for_retry": 1}


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks the table and the timeline show: in these states (any, if none), with
    ``name`` in their key (any case), from the ``offset``-th on, ``limit`` of them."""

    states: tuple[str, ...] = ()
    name: str = ""
    offset: int = 0
    limit: int = PAGE

    def matches(self, t: TaskRunRecord) -> bool:
        if self.states and str(t.state) not in self.states:
            return False
        return not self.name or self.name.lower() in t.task_key.lower()

    def query(self, offset: int | None = None) -> str:
        """The filter as a query string, at ``offset`` (the first page when None)."""
        pairs: list[tuple[str, str | int]] = [("state", s) for s in self.states]
        if self.name:
            pairs.append(("name", self.name))
        if offset:
            pairs.append(("offset", offset))
        if self.limit != PAGE:
            pairs.append(("limit", self.limit))
        return urlencode(pairs)


@dataclass(frozen=True)
class TaskPage:
    """One page of the task table: its rows and how to ask for the next."""

    rows: tuple[TaskRunRecord, ...]
    matched: int  # tasks the filter lets through, on every page
    total: int
    next_url: str | None  # the fragment of the next rows, for the script
    more_url: str | None  # the page from the next row on, for a browser without the script


def rows_of(tasks: Sequence[TaskRunRecord]) -> TaskPage:
    """A page of these tasks' rows alone (to redraw those that changed)."""
    return TaskPage(tuple(tasks), len(tasks), len(tasks), None, None)


def _rank(t: TaskRunRecord) -> int:
    return _ATTENTION.get(str(t.state), 2)


def task_page(detail: RunDetail, f: TaskFilter) -> TaskPage:
    """The tasks of ``f``'s page: failed first, then running, then the rest in graph order
    (the order ``detail.tasks`` come in)."""
    found = sorted((t for t in detail.tasks if f.matches(t)), key=_rank)
    rows = tuple(found[f.offset : f.offset + f.limit])
    after = f.offset + len(rows)
    rid = detail.run.id
    more = after < len(found)
    return TaskPage(
        rows,
        len(found),
        len(detail.tasks),
        f"/runs/{rid}/tasks?{f.query(after)}" if more else None,
        f"/runs/{rid}?{f.query(after)}#tasks" if more else None,
    )


@dataclass(frozen=True)
class Timeline:
    """One page of the timeline: the attempts of its tasks, on the whole run's time axis."""

    svg: str
    rows: int
    matched: int  # started tasks the filter lets through
    next_url: str | None
    more_url: str | None


def timeline_keys(detail: RunDetail, f: TaskFilter) -> tuple[list[str], int]:
    """The tasks on ``f``'s page of the timeline (those that started, failed first, then
    running, then in the order they started) and how many the filter lets through."""
    far = datetime.max.replace(tzinfo=UTC)
    started = [t for t in detail.tasks if t.attempt or t.started_at is not None]
    found = sorted(
        (t for t in started if f.matches(t)), key=lambda t: (_rank(t), t.started_at or far)
    )
    return [t.task_key for t in found[f.offset : f.offset + f.limit]], len(found)


def timeline(detail: RunDetail, f: TaskFilter, now: datetime) -> Timeline:
    """The attempts of the tasks of ``f``'s page of the timeline (``detail`` holds at least
    theirs). Every page spans the whole run, so pages line up."""
    keys, matched = timeline_keys(detail, f)
    shown = set(keys)
    bars = [
        Bar(a.task_key, a.number, a.outcome, a.started_at, a.finished_at)
        for a in detail.attempts
        if a.task_key in shown
    ]
    for t in detail.tasks:
        if (t.task_key in shown and t.state == TaskState.RUNNING and t.attempt
                and t.started_at is not None):
            bars.append(Bar(t.task_key, t.attempt, "running", t.started_at, None))
    run = detail.run
    span = None if run.started_at is None else (run.started_at, run.finished_at or now)
    rid = run.id
    svg = render_gantt(
        bars,
        now=now,
        order=keys,
        span=span,
        link=lambda b: f"/runs/{rid}?task={q(b.task_key)}&attempt={b.attempt}#logs",
    )
    after = f.offset + len(keys)
    more = after < matched
    return Timeline(
        svg,
        len(keys),
        matched,
        f"/runs/{rid}/timeline?{f.query(after)}" if more else None,
        f"/runs/{rid}?{f.query(after)}#timeline" if more else None,
    )
