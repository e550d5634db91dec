"""Partitions at scale: pages of partitions filtered by state and key range, and a summary
(counts by state, overall and per time bucket, and the ranges of failed and missing keys).

Ten years of hourly data are ~100,000 partitions: listing them all is no way to find last
week's failures. A page holds at most ``MAX_PAGE`` partitions; the summary names ranges, not
keys.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from legato.domain.states import RunState
from legato.services import partition_counting as counting
from legato.services import partition_views as views
from legato.services.gate import Service, action
from legato.services.partition_views import (
    MAX_PAGE,
    MAX_RANGES,
    NEVER_RUN,
    Bucket,
    GridRow,
    PartitionGrid,
    PartitionPage,
    PartitionState,
    PartitionSummary,
    state_filter,
)
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

class Partitions(Service):
    """Reading a partitioned pipeline's partitions, a page or a summary at a time."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    @action("partitions.read")
    def page(
        self,
        pipeline: str,
        *,
        states: Collection[str] = (),
        first: str | None = None,
        last: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        within: str | None = None,
    ) -> PartitionPage:
        """The partitions from ``first`` to ``last`` (keys, both included) whose state is one
        of ``states`` (any when empty), in key order, ``limit`` at most, after ``cursor``;
        ``within`` ("2026", "2026-03", "2026-03-01" or "2026-03-01T05"): only those whose
        time window starts then."""
        if not 1 <= limit <= MAX_PAGE:
            raise ServiceError(f"limit must be between 1 and {MAX_PAGE}", "limit")
        wanted = state_filter(states)
        name, parts = self._parts(pipeline)
        keys, ordered = self._window(parts, first, last, within)
        start = 0
        if cursor is not None:
            start = views.index_of(keys, cursor, ordered)
            if start < 0:
                raise ServiceError(f"cursor {cursor!r} is not a partition here", "cursor")
            start += 1
        never: tuple[str, str | None] = (NEVER_RUN, None)
        if not wanted:  # a page's keys only are looked up
            shown_keys = keys[start : start + limit]
            newest = self.ws.store.backfills.partition_states(name, shown_keys)
            listed = tuple(PartitionState(k, *newest.get(k, never)) for k in shown_keys)
            more = start + limit < len(keys)
            return PartitionPage(listed, len(keys), listed[-1].key if more else None)
        if ordered and NEVER_RUN not in wanted and keys:  # by the index on state
            rows = self.ws.store.backfills.partitions_between(name, keys[0], keys[-1], wanted)
            at = counting.positions_in(keys, rows)
            after = at[bisect_left(at, start) :]
            shown = [PartitionState(keys[i], *rows[keys[i]]) for i in after[:limit]]
            more = len(after) > limit
            return PartitionPage(tuple(shown), len(at), shown[-1].key if more else None)
        found = self._found(name, keys, ordered)
        matches = [i for i, s in enumerate(found) if s[0] in wanted]
        after = [i for i in matches if i >= start]
        shown = [PartitionState(keys[i], *found[i]) for i in after[:limit]]
        more = len(after) > limit
        return PartitionPage(tuple(shown), len(matches), shown[-1].key if more else None)

    @action("partitions.read")
    def summary(
        self,
        pipeline: str,
        *,
        granularity: str | None = None,
        first: str | None = None,
        last: str | None = None,
        within: str | None = None,
        ranges: int | None = MAX_RANGES,
    ) -> PartitionSummary:
        """Counts by state (overall and per ``granularity`` bucket of time partitions) and the
        ranges of failed and never-run partitions, from ``first`` to ``last`` (and
        ``within`` a time, as ``page`` takes it): the newest ``ranges`` of each (None: all),
        with how many there are in all."""
        if ranges is not None and ranges < 0:
            raise ServiceError("ranges must be 0 or more", "ranges")
        name, parts = self._parts(pipeline)
        if granularity is not None:
            views.check_granularity(pipeline, parts, granularity)
        keys, ordered = self._window(parts, first, last, within)
        counted = self._counted_summary(name, parts, keys, ordered, granularity, ranges)
        if counted is not None:
            return counted
        summary = self._summary(pipeline, name, parts, keys, ordered, granularity)
        return views.newest_ranges(summary, ranges)

    def _summary(
        self,
        pipeline: str,
        name: str,
        parts: PartitionSet,
        keys: list[str],
        ordered: bool,
        granularity: str | None,
    ) -> PartitionSummary:
        found = self._found(name, keys, ordered)
        states = [s for s, _ in found]
        counts = views.count_states(states)
        buckets: tuple[Bucket, ...] = ()
        if granularity is not None:
            label = views.time_label(parts, granularity)
            buckets = views.buckets(keys, states, label)
        return PartitionSummary(
            pipeline=pipeline,
            total=len(keys),
            counts=counts,
            failed=views.ranges_of(keys, states, RunState.FAILED.value),
            missing=views.ranges_of(keys, states, NEVER_RUN),
            granularity=granularity,
            buckets=buckets,
        )

    @action("partitions.read")
    def grid(
        self,
        pipeline: str,
        *,
        granularity: str,
        first: str | None = None,
        last: str | None = None,
        within: str | None = None,
    ) -> PartitionGrid:
        """Counts by state per ``granularity`` bucket of time, with two dimensions one row per
        key of the other dimension (in its order), from ``first`` to ``last`` and ``within``
        a time (as ``page`` takes them): a picture of every partition in a few hundred cells."""
        name, parts = self._parts(pipeline)
        views.check_granularity(pipeline, parts, granularity)
        keys, ordered = self._window(parts, first, last, within)
        if self._countable(name, parts, ordered, granularity):
            n = views.LABEL_LENGTH[granularity]
            found = counting.counted(self.ws.store.backfills, name, keys, n)
            if found is not None:
                row = GridRow("", tuple(views.bucket(keys, b) for b in found.spans))
                cells = [row] if keys else []
                return PartitionGrid(
                    pipeline, granularity, len(keys), views.summed(found.spans), tuple(cells)
                )
        states = [s for s, _ in self._found(name, keys, ordered)]
        label = views.time_label(parts, granularity)
        if len(parts.dimensions) == 1:
            rows = [GridRow("", views.buckets(keys, states, label))] if keys else []
        else:
            rows = views.group(keys, states, label, views.other_key(parts))
        counts = views.count_states(states)
        return PartitionGrid(pipeline, granularity, len(keys), counts, tuple(rows))

    # -- internals -----------------------------------------------------------------------

    def _parts(self, pipeline: str) -> tuple[str, PartitionSet]:
        """The pipeline's name and partitions, as this actor sees it."""
        pipe = self._sight().pipeline(pipeline)
        parts = pipe.automation.partitions
        if parts is None:
            raise NotFoundError(f"pipeline {pipe.name!r} has no partitions")
        return pipe.name, parts

    def _window(
        self, parts: PartitionSet, first: str | None, last: str | None, within: str | None
    ) -> tuple[list[str], bool]:
        """The keys from ``first`` to ``last`` (whose window starts ``within`` a time) that
        exist now, and whether they sort as text (then a range of text is this window)."""
        keys = parts.keys(self.ws.clock())
        ordered = counting.text_ordered(parts, keys)
        try:
            lo = 0 if first is None else views.index_of(keys, parts.get(first).key, ordered)
            hi = (
                len(keys) - 1
                if last is None
                else views.index_of(keys, parts.get(last).key, ordered)
            )
            if min(lo, hi) < 0:
                raise ValueError(first if lo < 0 else last)
        except ValueError as exc:
            field = "from" if first else "to"
            raise ServiceError(f"no such partition here: {exc}", field) from None
        if lo > hi:
            raise ServiceError(f"the range ends ({last}) before it starts ({first})", "to")
        keys = keys[lo : hi + 1]
        if within:
            keys = views.within_keys(parts, keys, within)
        return keys, ordered

    def _found(
        self, pipeline: str, keys: Sequence[str], ordered: bool
    ) -> list[tuple[str, str | None]]:
        """(state, newest run id) of each key, from the kept status (one row per partition
        with a run, whatever the runs behind it): of the keys' text range when they sort."""
        backfills = self.ws.store.backfills
        newest: Mapping[str, tuple[str, str]] = (
            backfills.partitions_between(pipeline, keys[0], keys[-1])
            if ordered and keys
            else backfills.partition_states(pipeline)
        )
        never: tuple[str, str | None] = (NEVER_RUN, None)
        return [newest.get(k, never) for k in keys]

    def _countable(
        self, pipeline: str, parts: PartitionSet, ordered: bool, granularity: str | None
    ) -> bool:
        """Whether the database may count these keys by label (see ``partition_counting``)."""
        return (
            ordered
            and counting.prefix_length(parts, granularity) is not None
            and counting.only_keys(
                self.ws.store.backfills, pipeline, parts, parts.keys(self.ws.clock())
            )
        )

    def _counted_summary(
        self,
        pipeline: str,
        parts: PartitionSet,
        keys: list[str],
        ordered: bool,
        granularity: str | None,
        ranges: int | None,
    ) -> PartitionSummary | None:
        """The summary counted by the database (see ``partition_counting``), with the newest
        ``ranges`` of failed and of missing partitions; None where it cannot be."""
        length = counting.prefix_length(parts, granularity)
        if length is None or not self._countable(pipeline, parts, ordered, granularity):
            return None
        failed = RunState.FAILED.value
        found = counting.counted(self.ws.store.backfills, pipeline, keys, length)
        if found is None:
            return None
        failed_at, n_failed = views.runs_of(keys, found.at.get(failed, []), ranges)
        missing_at, n_missing = views.runs_of(keys, found.at.get(NEVER_RUN, []), ranges)
        return PartitionSummary(
            pipeline=pipeline,
            total=len(keys),
            counts=views.summed(found.spans),
            failed=failed_at,
            missing=missing_at,
            granularity=granularity,
            buckets=tuple(views.bucket(keys, b) for b in found.spans) if granularity else (),
            failed_ranges=n_failed,
            missing_ranges=n_missing,
        )
