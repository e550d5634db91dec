"""The pipeline page's partitions: a zoomable map of time partitions drawn as SVG.

Ten years of hours are 10^5 partitions; the page draws a few hundred cells, each a year,
month, day or hour, split into segments by the share of its partitions in each state, titled
with the counts. A cell holding many partitions links to the zoom that shows its insides; one
holding a single partition names it (``data-key``). Two dimensions are rows (the static key)
by columns (time). The page's script selects cells for a backfill from ``data-first`` and
``data-last`` (1-D: cells ``data-i`` apart in key order; 2-D: the rectangle of ``data-r`` by
``data-c``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from legato.web.svg import esc, num, token

if TYPE_CHECKING:
    from legato.definitions.partitioning import TimeWindows
    from legato.services.partition_views import Bucket, PartitionGrid

#: Granularities coarse to fine, the characters of a label each names, and about how long
#: one lasts (enough to guess how many cells a window makes).
LEVELS = ("year", "month", "day", "hour")
_LENGTH = {"year": 4, "month": 7, "day": 10, "hour": 13}
_SPAN = {
    "year": timedelta(days=365.25),
    "month": timedelta(days=30.44),
    "day": timedelta(days=1),
    "hour": timedelta(hours=1),
}
_FINEST = {"hourly": "hour", "daily": "day", "weekly": "day", "monthly": "month"}
#: At most this many cells on the page (so it stays small however many partitions there are).
MAX_CELLS = 1600
MAX_COLUMNS = 62
#: Segment order inside a cell: done, under way, in trouble, not yet.
ORDER = ("succeeded", "running", "queued", "failed", "canceled", "never run")
ZOOM = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
CELL_W, CELL_H, GAP, LABEL_W, HEAD_H = 18.0, 16.0, 3.0, 96.0, 18.0
MIN_SEG = 3.0


@dataclass(frozen=True)
class MapView:
    """What the page draws: the SVG, the zoom's crumbs and how finely cells are cut."""

    svg: str
    granularity: str
    crumbs: tuple[tuple[str, str], ...]  # (label, url) from "all" down to the zoom
    total: int
    counts: dict[str, int]


def zoom_of(text: str | None) -> str:
    """A zoom as the page takes it ("", "2026", "2026-03", "2026-03-07"); ValueError if not."""
    if not text:
        return ""
    if not ZOOM.fullmatch(text):
        raise ValueError(f"zoom {text!r}: expected YYYY, YYYY-MM or YYYY-MM-DD")
    return text


def granularity_for(
    time_dim: TimeWindows, rows: int, zoom: str, now: datetime, first: datetime | None,
    last: datetime | None,
) -> str:
    """The finest granularity finer than the zoom whose cells fit ``MAX_CELLS`` (and, with
    ``rows`` keys of a second dimension, ``MAX_COLUMNS`` columns); the coarsest finer one
    when none fits."""
    finest = LEVELS.index(_FINEST[time_dim.unit])
    coarsest = next((i for i, g in enumerate(LEVELS) if _LENGTH[g] > len(zoom)), finest)
    coarsest = min(coarsest, finest)
    stop = now if time_dim.end is None else min(now, time_dim.end)
    start, end = _window(zoom, time_dim.start.replace(tzinfo=None), stop.replace(tzinfo=None))
    start = max(start, first.replace(tzinfo=None)) if first else start
    end = min(end, last.replace(tzinfo=None)) if last else end
    span = max(end - start, timedelta(hours=1))
    for i in range(finest, coarsest - 1, -1):
        columns = span / _SPAN[LEVELS[i]]
        if columns * rows <= MAX_CELLS and (rows == 1 or columns <= MAX_COLUMNS):
            return LEVELS[i]
    return LEVELS[coarsest]


def _window(zoom: str, start: datetime, now: datetime) -> tuple[datetime, datetime]:
    if not zoom:
        return start, now
    y, m, d = (int(x) for x in (zoom + "-01-01")[:10].split("-"))
    lo = datetime(y, m, d)
    if len(zoom) == 4:
        hi = datetime(y + 1, 1, 1)
    elif len(zoom) == 7:
        hi = datetime(y + (m == 12), m % 12 + 1, 1)
    else:
        hi = lo + timedelta(days=1)
    return max(lo, start), min(hi, now)


def crumbs(base: str, zoom: str, keep: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Links from the whole range down to ``zoom`` (each keeping the page's filters)."""
    out = [("all", _url(base, "", keep))]
    for n in (4, 7, 10):
        if len(zoom) >= n:
            out.append((zoom[:n], _url(base, zoom[:n], keep)))
    return tuple(out)


def _url(base: str, zoom: str, keep: list[tuple[str, str]]) -> str:
    query = urlencode([*keep, *([("zoom", zoom)] if zoom else [])])
    return f"{base}?{query}#partitions" if query else f"{base}#partitions"


def render(
    grid: PartitionGrid, time_dim: TimeWindows, two_d: bool, base: str,
    keep: list[tuple[str, str]], shown: frozenset[str],
) -> str:
    """The map as SVG: a row per static key (2-D) or per coarser time (1-D), a cell per bucket.

    ``shown``: the states the filter keeps (every state when empty); the others are drawn
    as blank segments, so a cell shows the share of what was asked for.
    """
    g = grid.granularity
    finest = _FINEST[time_dim.unit]
    rows: list[tuple[str, str, list[Bucket]]] = []  # (label, link, buckets)
    if two_d:
        rows = [(r.label, "", list(r.buckets)) for r in grid.rows]
    else:
        coarser = LEVELS[LEVELS.index(g) - 1] if g != "year" else None
        for b in grid.rows[0].buckets if grid.rows else ():
            label = b.label[: _LENGTH[coarser]] if coarser else ""
            if not rows or rows[-1][0] != label:
                rows.append((label, _url(base, label, keep) if label else "", []))
            rows[-1][2].append(b)
    labels = sorted({b.label for _, _, bs in rows for b in bs}) if two_d else []
    column = {label: i for i, label in enumerate(labels)}
    out: list[str] = []
    width, i = 0.0, 0
    for r, (label, link, buckets) in enumerate(rows):
        # A row is moved into place as a whole: its cells need no y of their own.
        out.append(f'<g transform="translate(0,{num(HEAD_H + r * (CELL_H + GAP))})">')
        if label:
            text = f'<text class="row-label" x="{num(LABEL_W - 6)}" y="{num(CELL_H - 4)}">'
            text += f"{esc(label)}</text>"
            out.append(f'<a href="{esc(link)}">{text}</a>' if link else text)
        for n, b in enumerate(buckets):
            c = column[b.label] if two_d else _position(b.label, g, n)
            x = LABEL_W + c * (CELL_W + GAP)
            width = max(width, x + CELL_W)
            where = f'data-r="{r}" data-c="{c}"' if two_d else f'data-i="{i}"'
            zoom = _url(base, b.label, keep) if g != finest else None
            out.append(_cell(b, x, where, label if two_d else "", zoom, shown))
            i += 1
        out.append("</g>")
    if not two_d:  # the columns of one dimension: hours, days of the month, months, years
        column = {b.label: _position(b.label, g, n) for _, _, bs in rows
                  for n, b in enumerate(bs)}
    every = 5 if two_d else {"hour": 6, "day": 7, "month": 3, "year": 2}[g]
    # One heading per column (the first label met there), every few columns.
    shown_at: dict[int, str] = {}
    for label, c in column.items():
        shown_at.setdefault(c, label[-2:])
    heads = "".join(
        f'<text class="col-label" x="{num(LABEL_W + c * (CELL_W + GAP))}" y="12">'
        f"{esc(text)}</text>"
        for c, text in sorted(shown_at.items())
        if c % every == 0
    )
    height = HEAD_H + len(rows) * (CELL_H + GAP)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pmap" data-granularity="{g}" '
        f'width="{num(width + 4)}" height="{num(height)}" role="img" '
        f'aria-label="partitions by {g}">{heads}{"".join(out)}</svg>'
    )


def _position(label: str, granularity: str, n: int) -> int:
    """A 1-D cell's column: its month, day or hour (so rows line up), or its order (years)."""
    if granularity == "year":
        return n
    value = int(label[-2:])
    return value if granularity == "hour" else value - 1


def _cell(
    b: Bucket, x: float, where: str, row: str, zoom_url: str | None, shown: frozenset[str]
) -> str:
    """One cell; its rects' height (and a single partition's width) come from the CSS, so
    that 10^3 cells stay small. A bucket of the finest granularity holding more than one
    partition (the hour a fall-back night repeats) has no zoom: a click selects it."""
    total = sum(b.counts.values())
    states = sorted(b.counts, key=lambda s: ORDER.index(s) if s in ORDER else len(ORDER))
    if total == 1:
        state = token(states[0].replace(" ", "_"))
        kind = state if not shown or states[0] in shown else "other"
        return (
            f'<g class="cell state-{state}" data-key="{esc(b.first)}" {where} tabindex="0">'
            f'<title>{esc(b.first)} · {esc(states[0])}</title>'
            f'<rect class="seg state-{kind}" x="{num(x)}"/></g>'
        )
    name = f"{b.label} {row}".strip()
    title = f"{name}: " + ", ".join(f"{b.counts[s]} {s}" for s in states)
    # Exact shares, but no state narrower than MIN_SEG: one failed day of a month must show.
    widths = {s: CELL_W * b.counts[s] / total for s in states}
    widest = max(states, key=lambda s: widths[s])
    for s in states:
        if widths[s] < MIN_SEG:
            widths[widest] -= MIN_SEG - widths[s]
            widths[s] = MIN_SEG
    segs, at = [], x
    for s in states:
        w = widths[s]
        kind = token(s.replace(" ", "_")) if not shown or s in shown else "other"
        segs.append(f'<rect class="seg state-{kind}" x="{num(at)}" width="{num(w)}"/>')
        at += w
    keys = f'data-first="{esc(b.first)}" data-last="{esc(b.last)}" data-n="{total}"'
    body = f'<title>{esc(title)}</title>{"".join(segs)}<rect class="frame" x="{num(x)}"/>'
    if zoom_url is None:
        return f'<g class="cell" {keys} {where} tabindex="0">{body}</g>'
    return f'<a class="cell" href="{esc(zoom_url)}" {keys} {where}>{body}</a>'
