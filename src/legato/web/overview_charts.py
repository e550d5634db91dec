"""The overview page's charts as SVG: runs per hour stacked by state, and small p50/p95
duration lines per pipeline. Drawn on the server like the DAG and the Gantt chart; colours
come from the page's CSS (``state-*`` classes), the fills here are fallbacks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import timedelta

from legato.services.overview_service import DayDurations, HourBar
from legato.web.gantt import format_duration
from legato.web.svg import esc, num, token

PLOT_W = 840.0
PLOT_H = 150.0
LEFT = 44.0  # the y axis' labels
BOTTOM = 22.0  # the x axis' labels
TOP = 8.0
GAP = 1.0  # between bars
_LABEL_W = 40.0  # an x label's width, roughly: the server has no font metrics
_FALLBACK = {"succeeded": "#22a06b", "failed": "#d93b3b", "canceled": "#8a8f98",
             "running": "#3b82f6", "queued": "#b9c7da"}

SPARK_W = 220.0
SPARK_H = 76.0
SPARK_PAD = 6.0
SPARK_AXIS = 12.0  # the day labels under the lines


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value - 1e-9:
            return step * power
    return 10 * power


def render_hours(bars: Sequence[HourBar], *, label: str, week: bool) -> str:
    """``bars`` (one per hour, oldest first) as stacked bars, one ``<g class="hour">`` per
    hour holding a ``<title>`` to hover (the hour and its runs per state) and a rect per
    state with runs. ``week`` labels the x axis by day rather than by hour."""
    n = max(len(bars), 1)
    top = nice_ceiling(max((b.total for b in bars), default=0))
    slot = PLOT_W / n
    width, height = LEFT + PLOT_W + 8, TOP + PLOT_H + BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="hours" viewBox="0 0 {num(width)}'
        f' {num(height)}" width="{num(width)}" height="{num(height)}" role="img"'
        f' aria-label="{esc(label)}">',
        '<g class="axis">',
    ]
    for i in range(5):
        value = top * i / 4
        y = TOP + PLOT_H - PLOT_H * i / 4
        text = f"{value:g}" if value == int(value) or top < 4 else f"{value:.0f}"
        parts.append(
            f'<line x1="{num(LEFT)}" y1="{num(y)}" x2="{num(LEFT + PLOT_W)}" y2="{num(y)}"'
            ' stroke="#e3e6ea"/>'
            f'<text class="tick" x="{num(LEFT - 6)}" y="{num(y + 4)}" text-anchor="end">'
            f"{esc(text)}</text>"
        )
    for i, bar in enumerate(bars):
        start = bar.start
        x = LEFT + i * slot
        room = LEFT + PLOT_W - x >= _LABEL_W  # a label cut by the right edge is left out
        if room and ((week and start.hour == 0) or (not week and start.hour % 3 == 0)):
            text = f"{start:%a %d}" if week else f"{start:%H}:00"
            parts.append(
                f'<line x1="{num(x)}" y1="{num(TOP)}" x2="{num(x)}" y2="{num(TOP + PLOT_H + 4)}"'
                ' stroke="#e3e6ea"/>'
                f'<text class="tick" x="{num(x)}" y="{num(height - 6)}">{esc(text)}</text>'
            )
    parts.append("</g>")
    for i, bar in enumerate(bars):
        x = LEFT + i * slot
        w = max(slot - GAP, 1.0)
        parts.append(
            f'<g class="hour" data-hour="{bar.start:%Y-%m-%dT%H}" data-total="{bar.total}">'
            f"<title>{esc(_hour_tip(bar))}</title>"
            # The whole column answers the pointer, so an empty or short bar shows its title.
            f'<rect class="hit" x="{num(x)}" y="{num(TOP)}" width="{num(slot)}"'
            f' height="{num(PLOT_H)}" fill="transparent"/>'
        )
        y = TOP + PLOT_H
        for state, count in bar.counts:
            h = PLOT_H * count / top
            y -= h
            parts.append(
                f'<rect class="seg state-{token(state)}" data-state="{esc(state)}"'
                f' data-count="{count}" x="{num(x)}" y="{num(y)}" width="{num(w)}"'
                f' height="{num(h)}" fill="{_FALLBACK.get(state, "#888")}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _hour_tip(bar: HourBar) -> str:
    end = bar.start + timedelta(hours=1)
    head = f"{bar.start:%a %Y-%m-%d %H}:00 to {end:%H}:00 UTC"
    if not bar.counts:
        return f"{head}: no runs"
    each = ", ".join(f"{n} {state}" for state, n in bar.counts)
    runs = "run" if bar.total == 1 else "runs"
    return f"{head}: {bar.total} {runs} ({each})"


def render_trend(pipeline: str, days: Sequence[DayDurations]) -> str:
    """A pipeline's p50 and p95 durations per day as two small lines (a day without
    succeeded runs breaks them), each day's point titled with its figures."""
    top = nice_ceiling(max((d.p95 or 0.0 for d in days), default=0.0))
    n = max(len(days), 1)
    step = (SPARK_W - 2 * SPARK_PAD - 40) / max(n - 1, 1)
    left = SPARK_PAD + 40  # room for the scale's label
    base = SPARK_H - SPARK_PAD - SPARK_AXIS  # where 0 s is

    def at(i: int, seconds: float) -> tuple[float, float]:
        y = base - (base - SPARK_PAD) * seconds / top
        return left + i * step, y

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {num(SPARK_W)}'
        f' {num(SPARK_H)}" width="{num(SPARK_W)}" height="{num(SPARK_H)}" role="img"'
        f' aria-label="{esc(pipeline)}: p50 and p95 duration per day" data-pipeline='
        f'"{esc(pipeline)}">',
        f'<text class="tick" x="{num(left - 4)}" y="{num(SPARK_PAD + 4)}" text-anchor="end">'
        f"{esc(format_duration(top))}</text>",
        f'<text class="tick" x="{num(left - 4)}" y="{num(base)}"'
        ' text-anchor="end">0</text>',
        f'<line x1="{num(left)}" y1="{num(base)}" x2="{num(SPARK_W - SPARK_PAD)}"'
        f' y2="{num(base)}" stroke="#e3e6ea"/>',
    ]
    for name, pick, colour in (("p95", _p95, "#f29d38"), ("p50", _p50, "#3056d3")):
        for run in _segments(days, pick):
            points = " ".join(f"{num(x)},{num(y)}" for x, y in (at(i, v) for i, v in run))
            parts.append(
                f'<polyline class="line {name}" points="{points}" fill="none"'
                f' stroke="{colour}" stroke-width="1.5"/>'
            )
    for i, d in enumerate(days):
        if d.p50 is None or d.p95 is None:
            continue
        x, y = at(i, d.p95)
        tip = (
            f"{d.day:%a %Y-%m-%d}: {d.runs} succeeded, p50 {format_duration(d.p50)},"
            f" p95 {format_duration(d.p95)}"
        )
        parts.append(
            f'<g class="day" data-day="{d.day.isoformat()}"><title>{esc(tip)}</title>'
            f'<rect class="hit" x="{num(x - step / 2)}" y="0" width="{num(step)}"'
            f' height="{num(SPARK_H)}" fill="transparent"/>'
            f'<circle cx="{num(x)}" cy="{num(y)}" r="2" fill="#f29d38"/>'
            f'<circle cx="{num(at(i, d.p50)[0])}" cy="{num(at(i, d.p50)[1])}" r="2"'
            ' fill="#3056d3"/></g>'
        )
    if days:
        for i in (0, len(days) - 1):
            anchor = "start" if i == 0 else "end"
            parts.append(
                f'<text class="tick" x="{num(at(i, 0)[0])}" y="{num(SPARK_H - 1)}"'
                f' text-anchor="{anchor}">{days[i].day:%a %d}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _p50(d: DayDurations) -> float | None:
    return d.p50


def _p95(d: DayDurations) -> float | None:
    return d.p95


def _segments(
    days: Sequence[DayDurations], pick: Callable[[DayDurations], float | None]
) -> list[list[tuple[int, float]]]:
    """Runs of consecutive days with a value, as (index, value) lists."""
    out: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, d in enumerate(days):
        value = pick(d)
        if value is None:
            if current:
                out.append(current)
            current = []
        else:
            current.append((i, value))
    if current:
        out.append(current)
    return out
