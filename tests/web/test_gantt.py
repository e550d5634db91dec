"""The Gantt timeline of task attempts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from legato.web.gantt import Bar, format_duration, render_gantt

NS = "{http://www.w3.org/2000/svg}"
T0 = datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rects(svg: str) -> dict[tuple[str, int], ET.Element]:
    root = ET.fromstring(svg)
    return {
        (r.get("data-task", ""), int(r.get("data-attempt", "0"))): r
        for r in root.iter(f"{NS}rect")
        if "bar" in r.get("class", "").split()
    }


def box(rect: ET.Element) -> tuple[float, float, float]:
    """x, width and y of a bar."""
    return float(rect.get("x", "")), float(rect.get("width", "")), float(rect.get("y", ""))


def row_keys(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [g.get("data-task", "") for g in root.iter(f"{NS}g") if g.get("class") == "row"]


BARS = [
    Bar("load", 1, "succeeded", at(20), at(30)),  # 10 s
    Bar("extract", 1, "failed", at(0), at(5)),  # 5 s
    Bar("extract", 2, "succeeded", at(5), at(15)),  # 10 s
    Bar("report", 1, "running", at(30), None),
]


def test_rows_follow_first_start_and_bars_are_proportional() -> None:
    svg = render_gantt(BARS, now=at(40))
    assert row_keys(svg) == ["extract", "load", "report"]
    bars = rects(svg)
    x1, w1, y1 = box(bars[("extract", 1)])
    x2, w2, y2 = box(bars[("extract", 2)])
    x3, w3, y3 = box(bars[("load", 1)])
    assert w2 == pytest.approx(2 * w1)
    assert w3 == pytest.approx(w2)
    # Starts at 0 s, 5 s and 20 s: positions are linear in time.
    assert x2 - x1 == pytest.approx(w1)
    assert x3 - x1 == pytest.approx(4 * w1)
    assert y1 == y2 < y3  # retries share their task's row


def test_running_bar_reaches_now() -> None:
    svg = render_gantt(BARS, now=at(40))
    bars = rects(svg)
    x, w, _ = box(bars[("report", 1)])
    x0, w0, _ = box(bars[("extract", 1)])
    seconds_per_px = 5 / w0
    assert (x - x0) * seconds_per_px == pytest.approx(30)
    assert w * seconds_per_px == pytest.approx(10)
    assert "running" in bars[("report", 1)].get("class", "").split()
    assert "running" not in bars[("load", 1)].get("class", "").split()
    now_line = ET.fromstring(svg).find(f".//{NS}line[@class='now']")
    assert now_line is not None and float(now_line.get("x1", "")) == pytest.approx(x + w)


def test_outcomes_are_classes_and_titles_carry_durations() -> None:
    bars = rects(render_gantt(BARS, now=at(40)))
    first = bars[("extract", 1)]
    assert "outcome-failed" in first.get("class", "").split()
    title = first.find(f"{NS}title")
    assert title is not None and title.text is not None
    assert "extract" in title.text and "attempt 1" in title.text
    assert "failed" in title.text and "5s" in title.text
    assert "10s" in (bars[("extract", 2)].find(f"{NS}title").text or "")  # type: ignore[union-attr]
    running = bars[("report", 1)].find(f"{NS}title")
    assert running is not None and "10s so far" in (running.text or "")


def test_order_is_respected_and_unlisted_tasks_follow() -> None:
    svg = render_gantt(BARS, now=at(40), order=["report", "waiting", "load"])
    assert row_keys(svg) == ["report", "waiting", "load", "extract"]


def test_axis_has_nice_ticks_and_the_absolute_start() -> None:
    root = ET.fromstring(render_gantt(BARS, now=at(95)))
    labels = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "tick"]
    assert 4 <= len(labels) <= 8
    assert labels[:4] == ["0s", "15s", "30s", "45s"]
    assert "1m" in labels and "1m30s" in labels
    start = root.find(f".//{NS}text[@class='start']")
    assert start is not None and "".join(start.itertext()).endswith("12:34:56 UTC")


@pytest.mark.parametrize("span", [0.0, 0.3, 1, 4, 7.5, 59, 61, 100, 1000, 3600, 7300, 86400 * 3])
def test_tick_count_stays_between_four_and_eight(span: float) -> None:
    svg = render_gantt([Bar("t", 1, "succeeded", at(0), at(span))], now=at(span))
    ticks = [t for t in ET.fromstring(svg).iter(f"{NS}line") if t.get("class") == "tick"]
    assert 4 <= len(ticks) <= 8
    # The bar ends inside the axis.
    x, w, _ = box(rects(svg)[("t", 1)])
    assert x + w <= max(float(t.get("x1", "")) for t in ticks) + 1e-6


def test_short_attempts_stay_visible() -> None:
    bars = [
        Bar("slow", 1, "succeeded", at(0), at(3600)),
        Bar("blink", 1, "succeeded", at(10), at(10.001)),
    ]
    _, width, _ = box(rects(render_gantt(bars, now=at(3600)))[("blink", 1)])
    assert width == 2


def test_empty_input() -> None:
    svg = render_gantt([], now=T0)
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert "no attempts yet" in "".join(root.itertext())


def test_escaping_and_links() -> None:
    bars = [Bar("<script>x</script>", 1, "succeeded", at(0), at(1))]
    svg = render_gantt(bars, now=at(1), link=lambda b: f"/a?task={b.task_key}&n={b.attempt}")
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    (anchor,) = root.iter(f"{NS}a")
    assert anchor.get("href") == "/a?task=<script>x</script>&n=1"
    rect = anchor.find(f"{NS}rect")
    assert rect is not None and rect.get("data-task") == "<script>x</script>"
    unlinked = ET.fromstring(render_gantt(bars, now=at(1), link=lambda b: None))
    assert not list(unlinked.iter(f"{NS}a"))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.04, "40ms"),
        (0.5, "0.5s"),
        (5, "5s"),
        (30, "30s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (7200, "2h"),
        (3725, "1h2m"),
        (90061, "1d1h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
