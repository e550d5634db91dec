"""``ctx.cursors``: the windows of incremental reads a task asks for, kept by the store.

``ctx.cursors.window("orders.updated_at", high=current_max)`` gives the ``(low, high]`` range
this run reads of a cursor column: for a partitioned run, the window recorded for that partition
if there is one; otherwise the window recorded for the run (so a retried attempt or a resumed
run reads the same rows), else a new one from the newest window's high to ``high()``, the
source's current max, recorded before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from legato.domain.cursors import Window

__all__ = ["Cursors", "NoCursors", "Window"]


class Cursors(Protocol):
    """The cursor windows a task reads."""

    def window(self, name: str, *, high: Callable[[], Any]) -> Window:
        """The window of cursor ``name`` for this run (see the module docstring)."""
        ...


class NoCursors:
    """``ctx.cursors`` of a task called outside a run (no store to keep windows in)."""

    def window(self, name: str, *, high: Callable[[], Any]) -> Window:
        raise RuntimeError(
            f"cursor {name!r}: this task runs outside a run with a store, "
            "so there is no window kept for it"
        )
