"""Metrics of this process for Prometheus: the exposition a scrape of ``/metrics`` answers.

What is counted where it happens lives in ``legato.observability.metrics``; this service adds
what only the store knows (runs queued and running, pool slots), read with queries whose cost
does not grow with the history kept, and the permission ``metrics.read`` (in the viewer
role), so that Prometheus scrapes with an API token like any other reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from legato.observability import metrics
from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.service_errors import Forbidden

if TYPE_CHECKING:
    from legato.services.workspace import Workspace


class Monitoring(Service):
    """This process's metrics, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self._ws = ws

    @action("metrics.read")
    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (``metrics.CONTENT_TYPE``).

        Refused to an actor limited to some pipelines: the figures name every pipeline.
        """
        if self.actor.scope:
            raise Forbidden("metrics cover every pipeline: use a token whose scope is all")
        store = self._ws.store
        figures = metrics.StoreFigures(
            runs=store.browse.active_counts(),
            pools=[(p.name, p.slots, len(p.holders)) for p in store.pools.pool_usage()],
        )
        return metrics.exposition(figures)
