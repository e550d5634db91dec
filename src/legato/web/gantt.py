"""A run's task attempts on a timeline, drawn as SVG: one row per task, one bar per attempt."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from legato.web.svg import esc as _esc
from legato.web.svg import num as _num
from legato.web.svg import token as _token

LABEL_W = 200.0  # the left column with the task keys
PLOT_W = 640.0
RIGHT_PAD = 32.0  # the last tick's label is centred on the plot's right edge
AXIS_H = 28.0
ROW_H = 24.0
BAR_H = 16.0
PAD = 8.0
MIN_BAR_W = 2.0  # so an attempt of a few milliseconds still shows
MAX_TICKS = 8
_CHAR_W = 7.0  # rough width of a label character; the server has no font metrics
_MINUTE, _HOUR, _DAY = 60, 3600, 86400
# Candidate tick spacings in seconds; neighbours are at most 2.5x apart, which is what
# guarantees at least four ticks once the spacing is the smallest giving at most eight.
_STEPS: tuple[float, ...] = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, _MINUTE, 2 * _MINUTE, 5 * _MINUTE)
_STEPS += (10 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE, _HOUR, 2 * _HOUR, 3 * _HOUR, 6 * _HOUR)
_STEPS += (12 * _HOUR, _DAY, 2 * _DAY, 5 * _DAY, 10 * _DAY, 20 * _DAY, 50 * _DAY)


@dataclass(frozen=True)
class Bar:
    """One attempt of one task; ``end`` is None while it is still running."""

    task_key: str
    attempt: int
    outcome: str
    start: datetime
    end: datetime | None


def render_gantt(
    bars: Sequence[Bar],
    *,
    now: datetime,
    order: Sequence[str] | None = None,
    link: Callable[[Bar], str | None] | None = None,
    span: tuple[datetime, datetime] | None = None,
) -> str:
    """The attempts as an inline ``<svg>`` timeline.

    Rows follow ``order`` (keys in it without attempts get an empty row), then any other
    task in order of its first start. The axis counts elapsed time from the earliest start;
    running attempts reach ``now``; ``span`` (start, end) widens the axis to cover that time,
    so that pages of one run's rows line up. ``link(bar)`` may give a URL for each bar. Colours
    belong to the page's CSS (classes ``outcome-*``, ``running``); fills here are fallbacks.
    """
    if not bars and span is None:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" class="gantt empty" viewBox="0 0 240 40"'
            ' width="240" height="40" role="img" aria-label="task timeline">'
            f'<text x="{_num(PAD)}" y="24">no attempts yet</text></svg>'
        )
    spans = {id(bar): _span(bar, now) for bar in bars}
    ends = [end for _, end in spans.values()]
    t0 = min([bar.start for bar in bars] + ([span[0]] if span else []))
    if span is not None:
        ends.append(span[1])
    # At least a second, so that a run of instant attempts still gets a readable axis.
    elapsed = max(max((end - t0).total_seconds() for end in ends), 1.0)
    step = _tick_step(elapsed)
    axis_end = step * max(math.ceil(elapsed / step - 1e-9), 1)
    scale = PLOT_W / axis_end

    def x_at(moment: datetime) -> float:
        return LABEL_W + (moment - t0).total_seconds() * scale

    rows = _row_keys(bars, order)
    width, height = LABEL_W + PLOT_W + RIGHT_PAD, AXIS_H + len(rows) * ROW_H + PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 {_num(width)}'
        f' {_num(height)}" width="{_num(width)}" height="{_num(height)}" role="img"'
        ' aria-label="task timeline">',
        f'<text class="start" x="{_num(PAD)}" y="{_num(AXIS_H - 10)}">'
        f"<title>{_esc(t0.isoformat())}</title>{t0:%H:%M:%S} UTC</text>",
        '<g class="axis">',
    ]
    for i in range(round(axis_end / step) + 1):
        x = _num(LABEL_W + i * step * scale)
        parts.append(
            f'<line class="tick" x1="{x}" y1="{_num(AXIS_H - 4)}" x2="{x}" y2="{_num(height)}"'
            ' stroke="#ddd"/>'
            f'<text class="tick" x="{x}" y="{_num(AXIS_H - 10)}" text-anchor="middle">'
            f"{format_duration(i * step)}</text>"
        )
    parts.append("</g>")

    by_key: dict[str, list[Bar]] = {}
    for bar in sorted(bars, key=lambda b: (b.start, b.attempt)):
        by_key.setdefault(bar.task_key, []).append(bar)
    for row, key in enumerate(rows):
        top = AXIS_H + row * ROW_H
        label = _fit(key, math.floor((LABEL_W - 2 * PAD) / _CHAR_W))
        parts.append(
            f'<g class="row" data-task="{_esc(key)}">'
            f'<text class="key" x="{_num(LABEL_W - PAD)}" y="{_num(top + ROW_H / 2)}"'
            f' text-anchor="end" dominant-baseline="central"><title>{_esc(key)}</title>'
            f"{_esc(label)}</text>"
        )
        for bar in by_key.get(key, []):
            start, end = spans[id(bar)]
            rect = _bar(bar, x_at(start), max(x_at(end) - x_at(start), MIN_BAR_W), top, end - start)
            url = link(bar) if link is not None else None
            parts.append(f'<a href="{_esc(url)}">{rect}</a>' if url else rect)
        parts.append("</g>")

    if any(bar.end is None for bar in bars) and now >= t0:
        x = _num(x_at(now))
        parts.append(
            f'<line class="now" x1="{x}" y1="{_num(AXIS_H - 4)}" x2="{x}" y2="{_num(height)}"'
            ' stroke="#c00"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def format_duration(seconds: float) -> str:
    """A compact duration: ``40ms``, ``0.5s``, ``42s``, ``1m30s``, ``2h``, ``1h5m``, ``3d4h``; two
    units at most, since the smaller ones stop mattering on a timeline."""
    if 0 < seconds < 0.095:
        return f"{max(round(seconds * 1000), 1)}ms"
    if seconds < 59.5:
        if seconds < 9.95 and round(seconds, 1) != round(seconds):
            return f"{seconds:.1f}s"
        return f"{round(seconds)}s"
    rest = round(seconds)
    days, rest = divmod(rest, _DAY)
    hours, rest = divmod(rest, _HOUR)
    minutes, secs = divmod(rest, _MINUTE)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next(i for i, (amount, _) in enumerate(units) if amount)
    return "".join(f"{amount}{unit}" for amount, unit in units[first : first + 2] if amount)


def _bar(bar: Bar, x: float, width: float, top: float, took: timedelta) -> str:
    running = bar.end is None
    duration = format_duration(took.total_seconds()) + (" so far" if running else "")
    tip = f"{bar.task_key} · attempt {bar.attempt} · {bar.outcome} · {duration}"
    classes = f"bar outcome-{_token(bar.outcome)}" + (" running" if running else "")
    return (
        f'<rect class="{classes}" data-task="{_esc(bar.task_key)}" data-attempt="{bar.attempt}"'
        f' x="{_num(x)}" y="{_num(top + (ROW_H - BAR_H) / 2)}" width="{_num(width)}"'
        f' height="{_num(BAR_H)}" rx="2" fill="#888"><title>{_esc(tip)}</title></rect>'
    )


def _span(bar: Bar, now: datetime) -> tuple[datetime, datetime]:
    """Where a bar starts and ends; clock skew must not give it a negative length."""
    end = bar.end if bar.end is not None else now
    return bar.start, max(end, bar.start)


def _tick_step(elapsed: float) -> float:
    for step in _STEPS:
        if math.ceil(elapsed / step - 1e-9) < MAX_TICKS:
            return step
    return _STEPS[-1] * math.ceil(elapsed / _STEPS[-1] / (MAX_TICKS - 1))


def _row_keys(bars: Sequence[Bar], order: Sequence[str] | None) -> list[str]:
    first: dict[str, tuple[datetime, int]] = {}
    for i, bar in enumerate(bars):
        first[bar.task_key] = min(first.get(bar.task_key, (bar.start, i)), (bar.start, i))
    keys = list(dict.fromkeys(order or ()))
    listed = set(keys)
    return keys + sorted((k for k in first if k not in listed), key=first.__getitem__)


def _fit(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "…"
