"""What the pages draw, built from the service views: the launcher's form fields, the log
panel (the graphs are in graphs.py, the run's task table and timeline in run_tables.py, the
partitions map in partition_map.py). Pure functions; the routes are in pages.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from legato.domain.states import TaskState
from legato.web.gantt import format_duration

if TYPE_CHECKING:
    from legato.services.catalog import ParamView, RunDetail
    from legato.services.overview_service import OverviewFigures
    from legato.services.run_service import LogEntry

#: A log larger than this shows its end only, with a link to the whole text.
LOG_TAIL = 256 * 1024


def q(value: str) -> str:
    """A path segment (task keys hold brackets)."""
    return quote(value, safe="")


def ago(t: datetime | None, now: datetime) -> str:
    """ "3m ago", "in 2h", or "" for no time."""
    if t is None:
        return ""
    secs = (now - t).total_seconds()
    if abs(secs) < 1:
        return "just now"
    text = format_duration(abs(secs)).replace(".0s", "s")
    return f"{text} ago" if secs > 0 else f"in {text}"


def took(start: datetime | None, end: datetime | None, now: datetime) -> str:
    """How long from ``start`` to ``end`` (or to now while it lasts)."""
    if start is None:
        return ""
    return format_duration(max(0.0, ((end or now) - start).total_seconds()))


def when(t: datetime | None) -> str:
    return "" if t is None else f"{t:%Y-%m-%d %H:%M:%S} UTC"


#: Environment names the pages draw in the colour that says "careful: this is production".
PRODUCTION_NAMES = frozenset({"prod", "production"})


def is_production(environment: str | None) -> bool:
    """Whether ``environment`` is named as production (``prod``, ``Production``...)."""
    return environment is not None and environment.lower() in PRODUCTION_NAMES


def setting_text(value: Any) -> str:
    """A resource's setting as the Resources page shows it: text as written, anything else
    as JSON (the template escapes both)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- the run page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptTab:
    """One attempt of the selected task, as a tab of the log panel."""

    number: int
    outcome: str
    url: str
    selected: bool


@dataclass(frozen=True)
class LogPanel:
    """The log panel: which task and attempt, its tabs, and the text so far."""

    task: str | None
    attempt: int | None
    tabs: tuple[AttemptTab, ...]
    text: str
    truncated: bool
    offset: int  # bytes of the file already shown: the live stream goes on from here
    running: bool
    error: str | None
    traceback: str | None
    raw_url: str | None
    stream_url: str | None
    note: str | None = None  # how the log was cut (a size cap, a full volume), if it was


def choose_task(detail: RunDetail) -> str | None:
    """The task whose log a run page shows first: failed, else running, else the last."""
    for wanted in (TaskState.FAILED, TaskState.RUNNING, TaskState.UP_FOR_RETRY):
        for t in detail.tasks:
            if t.state == wanted and t.attempt:
                return t.task_key
    started = [t for t in detail.tasks if t.attempt and t.started_at is not None]
    if started:
        return max(started, key=lambda t: t.started_at or datetime.min).task_key
    return None


def log_panel(
    detail: RunDetail, entries: list[LogEntry], task: str | None, attempt: int | None
) -> LogPanel:
    """The log panel of ``task`` (attempt ``attempt``, default the latest)."""
    rid = detail.run.id
    if task is None or not entries:
        return LogPanel(task, None, (), "", False, 0, False, None, None, None, None)
    numbers = [e.attempt for e in entries]
    pick = attempt if attempt in numbers else numbers[-1]
    entry = next(e for e in entries if e.attempt == pick)
    base = f"/runs/{rid}?task={q(task)}"
    tabs = tuple(
        AttemptTab(e.attempt, e.outcome, f"{base}&attempt={e.attempt}#logs", e.attempt == pick)
        for e in entries
    )
    text, size = _tail(entry.path)
    text = entry.mask.mask(text)
    record = next((a for a in detail.attempts if a.task_key == task and a.number == pick), None)
    api = f"/api/v1/runs/{rid}/tasks/{q(task)}/attempts/{pick}/log"
    running = entry.outcome == "running"
    return LogPanel(
        task=task,
        attempt=pick,
        tabs=tabs,
        text=text,
        truncated=size > len(text.encode("utf-8", errors="replace")),
        offset=size,
        running=running,
        error=None if record is None else record.error,
        traceback=None if record is None else record.traceback,
        raw_url=api,
        stream_url=f"{api}/stream?{urlencode({'offset': size})}" if running else None,
        note=entry.note,
    )


def _tail(path: Path) -> tuple[str, int]:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL))
            data = f.read(size)
    except FileNotFoundError:
        return "", 0
    return data.decode("utf-8", errors="replace"), size


# -- the launcher ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One input of the run launcher, made from a param's JSON schema."""

    name: str
    label: str
    # "number" | "integer" | "checkbox" | "date" | "datetime" | "select" | "text" | "json"
    # | "password"
    widget: str
    required: bool
    value: str  # as the input shows it
    choices: tuple[str, ...]
    hint: str


def form_field(p: ParamView) -> Field:
    """The input that fits the param's type; anything structured is edited as JSON."""
    schema = _plain(p.schema)
    kind = schema.get("type")
    fmt = schema.get("format")
    default = p.default
    hint = p.type if p.type != "any" else "any JSON value"
    if "enum" in schema:
        choices = tuple(str(c) for c in schema["enum"])
        value = "" if default is None else str(default)
        return Field(p.name, p.name, "select", p.required, value, choices, hint)
    if kind == "boolean":
        return Field(p.name, p.name, "checkbox", p.required, "true" if default else "", (), hint)
    if kind in ("integer", "number"):
        value = "" if default is None else str(default)
        return Field(p.name, p.name, kind, p.required, value, (), hint)
    if kind == "string" and fmt in ("date", "date-time"):
        value = "" if default is None else str(default)
        if fmt == "date-time" and value:
            value = value[:19]
        widget = "date" if fmt == "date" else "datetime"
        return Field(p.name, p.name, widget, p.required, value, (), hint)
    if kind == "string" and fmt == "password":  # a Secret: never echoed, never prefilled
        return Field(p.name, p.name, "password", p.required, "", (), hint)
    if kind == "string":
        value = "" if default is None else str(default)
        return Field(p.name, p.name, "text", p.required, value, (), hint)
    value = "" if default is None and p.required else json.dumps(default)
    return Field(p.name, p.name, "json", p.required, value, (), hint)


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    # Optional[X] comes as anyOf [X, null]: the form edits X and sends null when empty.
    options = schema.get("anyOf")
    if isinstance(options, list):
        real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(real) == 1:
            return real[0]
    return schema


# -- the overview ---------------------------------------------------------------------------


def overview_charts(figures: OverviewFigures) -> dict[str, Any]:
    """The overview's drawings and totals, by the names its section templates use."""
    from legato.services.overview_service import STACK_ORDER
    from legato.web.overview_charts import render_hours, render_trend

    return {
        "stack": STACK_ORDER,
        "day_chart": render_hours(figures.last_day, label="runs per hour, last 24 hours",
                                  week=False),
        "week_chart": render_hours(figures.last_week, label="runs per hour, last 7 days",
                                   week=True),
        "day_total": sum(b.total for b in figures.last_day),
        "week_total": sum(b.total for b in figures.last_week),
        "trends": [
            {"pipeline": t.pipeline, "svg": render_trend(t.pipeline, t.days)}
            for t in figures.trends
        ],
    }
