"""The pipeline page's partitions section, read through ``door.partitions``: the zoomable map
of time partitions (``partition_map``), or a table of static keys, with a filter by state, a
from/to range, and a page of the partitions that match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from legato.definitions.partitioning import MultiPartitions
from legato.services.partition_views import NEVER_RUN, STATES, PartitionPage, state_filter
from legato.services.service_errors import Forbidden, ServiceError
from legato.web import partition_map

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.services.door import Door

#: Partitions listed per page under the map (and of a static set).
PAGE = 50


@dataclass(frozen=True)
class Filters:
    """The section's query parameters, as given."""

    zoom: str = ""
    states: tuple[str, ...] = ()
    first: str = ""
    last: str = ""
    cursor: str = ""

    def keep(self, *, zoom: bool = False) -> list[tuple[str, str]]:
        """The query that keeps these filters (and the zoom, if asked)."""
        out = [("state", s) for s in self.states]
        out += [(k, v) for k, v in (("from", self.first), ("to", self.last)) if v]
        return out + ([("zoom", self.zoom)] if zoom and self.zoom else [])


def section(ctx: Door, name: str, parts: PartitionSet, f: Filters) -> dict[str, Any]:
    """The values ``pipeline.html``'s partitions section draws; a wrong filter is shown as
    ``error`` with the whole range drawn instead."""
    base = f"/pipelines/{name}"
    out: dict[str, Any] = {
        "f": f,
        "states": [NEVER_RUN, *(s for s in STATES if s != NEVER_RUN)],
        "timed": parts.time_dimension is not None,
        "error": None,
        "map": None,
        "listed": None,
        "more_url": None,
    }
    try:
        zoom = partition_map.zoom_of(f.zoom)
        first_at = parts.get(f.first).start if f.first else None
        last_at = parts.get(f.last).start if f.last else None
        window = {"first": f.first or None, "last": f.last or None}
        if parts.time_dimension is not None:
            out["map"] = _map(ctx, name, parts, f, zoom, first_at, last_at, base)
        wanted = list(f.states)
        if wanted or parts.time_dimension is None:
            found = ctx.partitions.page(
                name, states=wanted, within=zoom or None, cursor=f.cursor or None,
                limit=PAGE, **window,
            )
            out["listed"] = found
            out["more_url"] = _more(base, f, found)
    except Forbidden:
        raise
    except (ServiceError, ValueError) as exc:
        out["error"] = str(exc)
        if parts.time_dimension is not None and out["map"] is None:
            out["map"] = _map(ctx, name, parts, Filters(), "", None, None, base)
        elif out["listed"] is None and parts.time_dimension is None:
            out["listed"] = ctx.partitions.page(name, limit=PAGE)
    return out


def _map(
    ctx: Door, name: str, parts: PartitionSet, f: Filters, zoom: str,
    first_at: datetime | None, last_at: datetime | None, base: str,
) -> partition_map.MapView:
    time_dim = parts.time_dimension
    assert time_dim is not None  # only time partitions have a map
    other = [p for p in parts.parts if p is not time_dim] if isinstance(
        parts, MultiPartitions
    ) else []
    rows = len(other[0].keys(ctx.clock())) if other else 1
    g = partition_map.granularity_for(time_dim, rows, zoom, ctx.clock(), first_at, last_at)
    grid = ctx.partitions.grid(
        name, granularity=g, within=zoom or None, first=f.first or None, last=f.last or None
    )
    keep = f.keep()
    svg = partition_map.render(grid, time_dim, bool(other), base, keep, state_filter(f.states))
    return partition_map.MapView(
        svg, g, partition_map.crumbs(base, zoom, keep), grid.total, grid.counts
    )


def _more(base: str, f: Filters, found: PartitionPage) -> str | None:
    if found.next_cursor is None:
        return None
    return f"{base}?{urlencode([*f.keep(zoom=True), ('cursor', found.next_cursor)])}#partitions"
