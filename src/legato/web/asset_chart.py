"""An asset's row counts over its recent materializations as a small SVG line, drawn on the
server like the other charts: one point per materialization, oldest left, each holding a
``<title>`` to hover (when, partition, rows)."""

from __future__ import annotations

from collections.abc import Sequence

from legato.domain.materializations import Materialization
from legato.web.overview_charts import nice_ceiling
from legato.web.svg import esc, num

W = 560.0
H = 120.0
LEFT = 52.0  # the y axis' labels
BOTTOM = 18.0  # the first and last dates
TOP = 8.0
RIGHT = 10.0


def render_rows(history: Sequence[Materialization]) -> str | None:
    """``history`` (newest first, as the store gives it) as a line of row counts, or None
    when no materialization there knows its row count."""
    points = [(m, m.rows) for m in reversed(history) if m.rows is not None]
    if not points:
        return None
    top = nice_ceiling(max(r for _, r in points if r is not None))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(points) - 1, 1)

    def y(rows: float) -> float:
        return TOP + plot_h - plot_h * rows / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rows-chart" viewBox="0 0 {num(W)}'
        f' {num(H)}" width="{num(W)}" height="{num(H)}" role="img"'
        f' aria-label="Rows of the last {len(points)} materializations">',
        '<g class="axis">',
    ]
    for value in (0.0, top / 2, top):
        text = f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
        parts.append(
            f'<line x1="{num(LEFT)}" y1="{num(y(value))}" x2="{num(W - RIGHT)}"'
            f' y2="{num(y(value))}" stroke="#e3e6ea"/>'
            f'<text class="tick" x="{num(LEFT - 6)}" y="{num(y(value) + 4)}"'
            f' text-anchor="end">{text}</text>'
        )
    first, last = points[0][0].at, points[-1][0].at
    parts.append(
        f'<text class="tick" x="{num(LEFT)}" y="{num(H - 4)}">{first:%Y-%m-%d %H:%M}</text>'
    )
    if len(points) > 1:
        parts.append(
            f'<text class="tick" x="{num(W - RIGHT)}" y="{num(H - 4)}" text-anchor="end">'
            f"{last:%Y-%m-%d %H:%M}</text>"
        )
    parts.append("</g>")
    xy = [(LEFT + i * step if len(points) > 1 else LEFT + plot_w / 2, y(r or 0))
          for i, (_, r) in enumerate(points)]  # fmt: skip
    line = " ".join(f"{num(x)},{num(yy)}" for x, yy in xy)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#3b82f6" stroke-width="2"/>')
    for (m, rows), (x, yy) in zip(points, xy, strict=True):
        where = f" · {m.partition}" if m.partition is not None else ""
        parts.append(
            f'<circle class="point" cx="{num(x)}" cy="{num(yy)}" r="3" fill="#3b82f6">'
            f"<title>{esc(f'{m.at:%Y-%m-%d %H:%M:%S}{where}: {rows:,} rows')}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
