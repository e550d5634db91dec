"""What every route works through: the workspace and its services, and who hears of new runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.automation import Automation
    from legato.services.catalog import Catalog
    from legato.services.runs import Workspace


@dataclass(frozen=True)
class Door:
    """The services behind the API and the UI.

    ``on_run`` hears of every run the API queues: inside ``legato up`` it wakes the daemon so
    the run starts at once; under ``legato web`` alone, a separate scheduler polls the queue.
    """

    ws: Workspace
    auto: Automation
    catalog: Catalog
    on_run: Callable[[RunRecord | None], None]

    def queued(self, run: RunRecord) -> RunRecord:
        """Tell whoever starts runs about ``run``; returns it."""
        self.on_run(run)
        return run
