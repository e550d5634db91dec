"""How runs, tasks and pipelines look in a terminal and as JSON."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

from legato.cli.console import Printer, escape

if TYPE_CHECKING:
    from rich.console import Console

    from legato.domain.records import Progress, RunRecord, TaskRunRecord

STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "upstream_failed": "red",
    "canceled": "magenta",
    "running": "cyan",
    "queued": "blue",
    "pending": "dim",
    "up_for_retry": "yellow",
    "skipped": "dim",
}
SYMBOL = {
    "succeeded": "✓",
    "failed": "✗",
    "upstream_failed": "✗",
    "canceled": "⊘",
    "skipped": "-",
    "up_for_retry": "↻",
    "running": "…",
    "queued": "·",
    "pending": "·",
}


def to_jsonable(value: Any) -> Any:
    """Records, enums and datetimes as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, '')}]{state}[/]"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    if end is None:
        return "…"
    secs = (end - start).total_seconds()
    return f"{secs * 1000:.0f}ms" if secs < 1 else f"{secs:.1f}s"


#: What a task waits for before it is tried again, by (pipeline, graph node): a phrase such as
#: "condition db_up", or None when it waits for time alone.
WaitsFor = Callable[[str, str], "str | None"]


class RunProgress:
    """The live view of ``legato run``: a bar on a terminal, a line per finished task otherwise.

    A task waiting to be tried again gets one line per failed attempt, however often the
    driver looks at its retry condition meanwhile; ``waits_for`` names that condition.
    """

    def __init__(
        self,
        console: Printer,
        total_hint: int,
        *,
        quiet: bool = False,
        waits_for: WaitsFor | None = None,
    ) -> None:
        self.console = console
        self.live = console.is_terminal and not quiet
        self.quiet = quiet
        self.lines = not self.live and not quiet and total_hint <= 200
        self._last = 0.0
        self._view: Any = None
        self._waits_for = waits_for
        self._retry_said: dict[str, int] = {}  # task key -> the attempt whose retry was said
        self._latest: Progress | None = None  # the latest step reported

    def __enter__(self) -> RunProgress:
        if self.live:
            from rich.live import Live

            # Only a Rich console reports a terminal, so this one is Rich.
            rich = cast("Console", self.console)
            self._view = Live(console=rich, refresh_per_second=10, transient=True)
            self._view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._view is not None:
            self._view.__exit__(None, None, None)

    def counted(self, run: RunRecord) -> dict[str, int] | None:
        """Task runs by state as the driver counted them at the end of ``run`` when it
        succeeded (nothing to list then), else None."""
        last = self._latest
        if last is None or last.run.id != run.id or run.state.value != "succeeded":
            return None
        if not last.run.state.finished:
            return None
        return {s.value: n for s, n in last.counts().items() if n}

    def __call__(self, progress: Progress) -> None:
        self._latest = progress
        changed = [r for r in progress.changed if self._news(r)]
        if self.lines:
            for row in changed:
                if row.state.finished or row.state.value == "up_for_retry":
                    if row.map_index is not None and row.state.value in ("succeeded", "skipped"):
                        # A map may have any number of elements: those that went well are
                        # told by their node's own line, with how many there were.
                        continue
                    self._line(row, progress.run.pipeline)
        if self._view is not None:
            now = time.monotonic()
            if now - self._last >= 0.1:
                self._last = now
                self._view.update(self._summary(progress))
            for row in changed:
                if row.state.value in ("failed", "up_for_retry"):
                    self._view.console.print(self._line_text(row, progress.run.pipeline))

    def _news(self, row: TaskRunRecord) -> bool:
        """False for a retry already said: each look at a retry condition changes the row."""
        if row.state.value != "up_for_retry":
            return True
        if self._retry_said.get(row.task_key) == row.attempt:
            return False
        self._retry_said[row.task_key] = row.attempt
        return True

    def _line_text(self, row: TaskRunRecord, pipeline: str = "") -> str:
        state = row.state.value
        extra = f"  {escape(row.error)}" if row.error and state != "succeeded" else ""
        if state == "up_for_retry" and self._waits_for is not None:
            what = self._waits_for(pipeline, row.node)
            if what is not None:
                extra += escape(f"; attempt {row.attempt + 1} waits for {what}")
        took = duration(row.started_at, row.finished_at) if row.attempt else ""
        if row.map_index is None and row.item_count is not None and row.attempt == 0:
            took = f"{row.item_count} element{'s' if row.item_count != 1 else ''}"
        return (
            f"  [{STATE_STYLE.get(state, '')}]{SYMBOL.get(state, '?')} {row.task_key}[/] "
            f"[dim]{state} {took}[/]{extra}"
        )

    def _line(self, row: TaskRunRecord, pipeline: str = "") -> None:
        self.console.print(self._line_text(row, pipeline), highlight=False)

    def _summary(self, progress: Progress) -> Any:
        from rich.text import Text

        counts = progress.counts()
        total = sum(counts.values())
        done = sum(n for s, n in counts.items() if s.finished)
        width = 30
        filled = int(width * done / total) if total else width
        text = Text(f"{progress.run.pipeline} {progress.run.id}  ")
        text.append("█" * filled, style="green")
        text.append("░" * (width - filled), style="dim")
        text.append(f" {done}/{total}  ")
        for state, n in sorted(counts.items(), key=lambda kv: kv[0].value):
            if n and state.value != "succeeded":
                text.append(f"{state.value} {n}  ", style=STATE_STYLE.get(state.value, ""))
        return text


def run_summary(
    console: Printer,
    run: RunRecord,
    rows: list[TaskRunRecord],
    counts: Mapping[str, int] | None = None,
) -> None:
    """The closing lines of ``legato run``: the run's state and what failed. ``counts``:
    task runs by state (mapped nodes by element), when known without ``rows``."""
    if counts is None:
        counts = {}
        mapped = {r.node for r in rows if r.map_index is not None}
        for r in rows:
            if r.map_index is None and r.node in mapped:
                continue
            counts[r.state.value] = counts.get(r.state.value, 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    console.print(
        f"run [bold]{run.id}[/] {run.pipeline}: {styled(run.state.value)} "
        f"in {duration(run.started_at or run.created_at, run.finished_at)} ({parts})",
        highlight=False,
    )
    if run.state.value == "failed":
        for r in rows:
            if r.state.value == "failed":
                console.print(f"  [red]✗ {r.task_key}[/]: {escape(r.error or '')}", highlight=False)
        console.print(
            f"  logs: legato logs {run.id}    re-run: legato rerun {run.id} --from-failure",
            highlight=False,
        )
