"""What the pages draw, built from the service views: the run's DAG and Gantt, the launcher's
form fields, the log panel (the partitions map is ``partition_map``). Pure functions; the
routes are in pages.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from legato.domain.states import TaskState
from legato.web.dag_layout import DagNode, render_svg
from legato.web.gantt import Bar, format_duration, render_gantt

if TYPE_CHECKING:
    from legato.domain.records import TaskRunRecord
    from legato.services.catalog import NodeView, ParamView, RunDetail
    from legato.services.check_steps import CheckStep
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


def node_states(
    nodes: tuple[NodeView, ...], tasks: tuple[TaskRunRecord, ...]
) -> dict[str, tuple[str | None, str]]:
    """Each node's state and a detail line (a mapped node's elements by state)."""
    own = {t.task_key: t for t in tasks if t.map_index is None}
    elements: dict[str, list[TaskRunRecord]] = {}
    for t in tasks:
        if t.map_index is not None:
            elements.setdefault(t.node, []).append(t)
    out: dict[str, tuple[str | None, str]] = {}
    for n in nodes:
        row = own.get(n.id)
        state = None if row is None else str(row.state)
        detail = ""
        kids = elements.get(n.id, [])
        if kids:
            ok = sum(1 for k in kids if k.state == TaskState.SUCCEEDED)
            detail = f"{ok}/{len(kids)} elements"
        elif row is not None and row.attempt > 1:
            detail = f"attempt {row.attempt}"
        elif row is not None and row.reused_from:
            detail = "reused"
        out[n.id] = (state, detail)
    return out


def run_dag(detail: RunDetail) -> str:
    """The run's graph as SVG, each node coloured by its state and linked to its log."""
    states = node_states(detail.nodes, detail.tasks)
    dag = [
        DagNode(
            n.id,
            n.id,
            n.upstream,
            states.get(n.id, (None, ""))[0],
            n.mapped,
            states.get(n.id, (None, ""))[1],
        )
        for n in detail.nodes
    ]
    # Each check after its task: a step of its own, in the colour of its outcome.
    dag += [
        DagNode(c.id, c.name, (c.node,), c.state, detail=_counted(c), kind="check")
        for c in detail.checks
    ]
    task_of = {c.id: c.node for c in detail.checks}  # a check's step opens its task's log
    return render_svg(
        dag, link=lambda key: f"/runs/{detail.run.id}?task={q(task_of.get(key, key))}#logs"
    )


def _counted(step: CheckStep) -> str:
    if step.failed_count is None:
        return step.message
    return f"{step.failed_count} of {step.total_count} rows failed"


def pipeline_dag(nodes: tuple[NodeView, ...]) -> str:
    """A pipeline's graph as SVG (no states), each task's checks as steps after it."""
    dag = [
        DagNode(n.id, n.id, n.upstream, None, n.mapped, f"pool {n.pool}" if n.pool else "")
        for n in nodes
    ]
    dag += [
        DagNode(f"{n.id}:{name}", name, (n.id,), None, detail=severity, kind="check")
        for n in nodes
        for name, severity in n.checks
    ]
    return render_svg(dag)


def run_gantt(detail: RunDetail, now: datetime) -> str:
    """The run's attempts on a timeline, the running ones up to now."""
    bars = [
        Bar(a.task_key, a.number, a.outcome, a.started_at, a.finished_at) for a in detail.attempts
    ]
    for t in detail.tasks:
        if t.state == TaskState.RUNNING and t.attempt and t.started_at is not None:
            bars.append(Bar(t.task_key, t.attempt, "running", t.started_at, None))
    # Rows in the order tasks started; those yet to start follow in the graph's order.
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rank = {n.id: i for i, n in enumerate(detail.nodes)}
    order = [
        t.task_key
        for t in sorted(
            detail.tasks,
            key=lambda t: (t.started_at or far, rank.get(t.node, 0), t.map_index or -1),
        )
        if t.attempt or t.started_at is not None
    ]
    rid = detail.run.id
    return render_gantt(
        bars,
        now=now,
        order=order,
        link=lambda b: f"/runs/{rid}?task={q(b.task_key)}&attempt={b.attempt}#logs",
    )


def graph_order(detail: RunDetail) -> list[TaskRunRecord]:
    """The run's task runs in the graph's order, each mapped node followed by its elements."""
    rank = {n.id: i for i, n in enumerate(detail.nodes)}
    return sorted(
        detail.tasks,
        key=lambda t: (
            rank.get(t.node, len(rank)),
            t.node,
            -1 if t.map_index is None else t.map_index,
        ),
    )


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
