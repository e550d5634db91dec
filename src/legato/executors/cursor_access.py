"""``ctx.cursors``: the windows of incremental reads, kept in the store the run is recorded in.

The worker opens that store by URL on first use (``SecretSource.store_url``), like
``ctx.secrets`` does. A partitioned run's window is the partition's; any other run's is the
run's own, so a retried attempt or a resumed run reads the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from legato.clock import Clock, system_clock
from legato.domain.cursors import Window, partition_scope, run_scope
from legato.executors.worker_store import worker_store


class TaskCursors:
    """The cursor windows one attempt reads (``legato.definitions.cursors.Cursors``)."""

    def __init__(
        self,
        store_url: str,
        pipeline: str,
        run_id: str,
        partition: str | None,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self._url = store_url
        self._pipeline = pipeline
        self._run_id = run_id
        self._scope = run_scope(run_id) if partition is None else partition_scope(partition)
        self._clock = clock

    def window(self, name: str, *, high: Callable[[], Any]) -> Window:
        """The window of cursor ``name`` for this run; ``high()`` is asked only for a new one."""
        cursors = worker_store(self._url).cursors
        found = cursors.get_window(self._pipeline, name, self._scope)
        if found is None:
            current = high()  # outside the store's transaction: it may query a slow source
            found = cursors.open_window(
                self._pipeline, name, self._scope, current, self._run_id, self._clock()
            )
        return found.window

    def __repr__(self) -> str:
        return f"<cursors of pipeline {self._pipeline!r}, {self._scope}>"
