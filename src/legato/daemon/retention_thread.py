"""The daemons' retention thread: applies the project's ``[retention]`` policy beside the loop.

A thread of its own, so that pruning (a batch of runs, then their log and result folders)
never delays a schedule tick or a run's step: each batch is one short transaction, and the
loop's own transactions go between them. It looks every ``EVERY``; a pass prunes at most
``PER_PASS`` runs, so that a store that has never been pruned catches up over a few passes
instead of in one long one. Without a policy it does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from legato.daemon.alert_thread import Wakeable
from legato.services.service_errors import disk_full, store_unavailable

if TYPE_CHECKING:
    from legato.services.door import Door

log = logging.getLogger("legato.retention")

#: Seconds between passes.
EVERY = 60.0
#: Runs removed in one pass at most.
PER_PASS = 5000


class RetentionThread(Wakeable):
    """Prunes ``door``'s store by its project's policy until stopped; ``say`` tells the
    daemon's log what went."""

    def __init__(self, door: Door, say: Callable[[str], None]) -> None:
        super().__init__("legato-retention")
        self._door = door
        self._say = say

    def run(self) -> None:
        retention = self._door.retention
        while not self._halt.is_set():
            try:
                if retention.policy() is not None:
                    report = retention.prune(max_runs=PER_PASS)
                    gone = report.removed
                    if gone.runs:
                        self._say(
                            f"pruned {gone.runs} runs older than {report.policy.runs} "
                            f"({gone.task_runs} task runs, {gone.events} events, "
                            f"{report.folders} log and result folders)"
                        )
                    for what, n, window in (
                        ("logs", report.logs_pruned, report.policy.logs),
                        ("results", report.results_pruned, report.policy.results),
                    ):
                        if n:
                            self._say(f"pruned the {what} of {n} runs older than {window}")
                    if report.trigger_events or report.audit_entries:
                        self._say(
                            f"pruned {report.trigger_events} trigger events and "
                            f"{report.audit_entries} audit trail rows"
                        )
                    most = max(gone.runs, report.logs_pruned, report.results_pruned)
                    if most >= PER_PASS:
                        continue  # more to do: the next pass at once
            except Exception as exc:  # the store away, or a bug: say so, go on
                if store_unavailable(exc) or disk_full(exc):
                    log.info("retention: the store is unreachable or full: %s", exc)
                else:
                    log.warning("retention: %s", exc, exc_info=True)
            self._wake.wait(EVERY)
            self._wake.clear()
