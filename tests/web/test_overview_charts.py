"""The overview's SVG drawings: bars scaled to a round top, lines broken by a day without
runs, every bar and day titled."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from legato.services.overview_service import DayDurations, HourBar
from legato.web.overview_charts import PLOT_H, nice_ceiling, render_hours, render_trend

T0 = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)


def test_nice_ceiling_rounds_up_to_a_readable_top() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 24, 180, 2600)] == [
        1, 1, 5, 10, 20, 25, 200, 5000,
    ]


def test_bars_share_one_scale_and_stack_bottom_up() -> None:
    bars = [
        HourBar(T0, (("succeeded", 15), ("failed", 5))),  # 20: the top of the plot
        HourBar(T0 + timedelta(hours=1), ()),
        HourBar(T0 + timedelta(hours=2), (("queued", 5),)),
    ]
    svg = render_hours(bars, label="runs", week=False)
    heights = {
        (hour, state): float(h)
        for hour, body in re.findall(r'data-hour="([\dT-]+)"[^>]*>(.*?)</g>', svg)
        for state, h in re.findall(r'data-state="(\w+)"[^>]*height="([\d.]+)"', body)
    }
    assert heights == {
        ("2026-03-09T00", "succeeded"): PLOT_H * 15 / 20,
        ("2026-03-09T00", "failed"): PLOT_H * 5 / 20,
        ("2026-03-09T02", "queued"): PLOT_H * 5 / 20,
    }
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert titles[1] == "Mon 2026-03-09 01:00 to 02:00 UTC: no runs"
    assert titles[2] == "Mon 2026-03-09 02:00 to 03:00 UTC: 5 runs (5 queued)"


def test_a_day_without_runs_breaks_the_lines() -> None:
    days = [DayDurations(date(2026, 3, d), 3, 10.0 * d, 20.0 * d) for d in (3, 4, 5)]
    days.append(DayDurations(date(2026, 3, 6), 0, None, None))
    days.append(DayDurations(date(2026, 3, 7), 1, 60.0, 60.0))
    svg = render_trend("etl", days)
    assert len(re.findall(r'class="line p50"', svg)) == 2  # days 3-5, then day 7 alone
    assert len(re.findall(r'<g class="day"', svg)) == 4
    assert "<title>Sat 2026-03-07: 1 succeeded, p50 1m, p95 1m</title>" in svg
    assert ">Tue 03</text>" in svg and ">Sat 07</text>" in svg
