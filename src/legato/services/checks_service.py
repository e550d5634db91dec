"""Data-quality check results with their history: what ``legato checks``, the API and the
run page show. Runs record them (``legato.executors.checking``); this reads them back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from legato.services.actor import Actor
from legato.services.gate import Service, action

if TYPE_CHECKING:
    from legato.domain.records import CheckResultRecord
    from legato.services.workspace import Workspace

#: The most results a run's page reads: far more than any run's tasks declare checks.
_RUN_LIMIT = 10_000


class Checks(Service):
    """Check results, for one actor (who reads those of the pipelines it sees)."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self._ws = ws

    @action("runs.read")
    def results(
        self, *, asset: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[CheckResultRecord]:
        """Results newest first, of one asset and/or one run (an id or its unique prefix)
        when given."""
        store = self._ws.store
        sight = self._sight()
        if run_id is not None:
            run_id = store.runs.find_run(run_id, pipelines=sight.pipelines()).id
        return store.checks.list(
            asset=asset, run_id=run_id, limit=limit, pipelines=sight.pipelines()
        )

    @action("runs.read")
    def of_run(self, run_id: str) -> dict[str, list[CheckResultRecord]]:
        """A run's results by task key, the newest of each check only (a task resumed or
        retried checks again), in the order the checks ran."""
        by_task: dict[str, dict[str, CheckResultRecord]] = {}
        for rec in sorted(self.results(run_id=run_id, limit=_RUN_LIMIT), key=lambda c: c.id):
            by_task.setdefault(rec.result.task_key, {})[rec.result.check_name] = rec
        return {task: list(checks.values()) for task, checks in by_task.items()}
