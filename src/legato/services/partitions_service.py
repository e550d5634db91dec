"""Partitions at scale: pages of partitions filtered by state and key range, and a summary
(counts by state, overall and per time bucket, and the ranges of failed and missing keys).

Ten years of hourly data are ~100,000 partitions: listing them all is no way to find last
week's failures. A page holds at most ``MAX_PAGE`` partitions; the summary names ranges, not
keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from legato.definitions.partitioning import TimeWindows
from legato.domain.states import RunState
from legato.services.gate import Service, action
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

NEVER_RUN = "never run"
#: State names a filter takes: the run states, and "never run" (also "missing").
STATES = (NEVER_RUN, *(s.value for s in RunState))
MAX_PAGE = 1000
#: Bucket sizes of the summary of time partitions, and how each labels a window's start.
GRANULARITIES = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}


@dataclass(frozen=True)
class PartitionState:
    """One partition and the state of its newest run ("never run" without one)."""

    key: str
    state: str
    run_id: str | None


@dataclass(frozen=True)
class PartitionPage:
    """Partitions in key order matching a filter, from ``after`` on; ``total`` counts every
    match; ``next_cursor`` (the last key here) is None on the last page."""

    partitions: tuple[PartitionState, ...]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class KeyRange:
    """Consecutive partitions (in key order) from ``first`` to ``last``."""

    first: str
    last: str
    count: int


@dataclass(frozen=True)
class Bucket:
    """The partitions whose window starts in one year, month, day or hour."""

    label: str
    first: str
    last: str
    counts: dict[str, int]


@dataclass(frozen=True)
class PartitionSummary:
    """How a pipeline's partitions stand, without listing them."""

    pipeline: str
    total: int
    counts: dict[str, int]  # state -> partitions, states with none left out
    failed: tuple[KeyRange, ...]
    missing: tuple[KeyRange, ...]  # never run
    granularity: str | None
    buckets: tuple[Bucket, ...]


def state_filter(states: Collection[str]) -> frozenset[str]:
    """The states named (``missing`` meaning never run); ServiceError for an unknown one."""
    out = set()
    for s in states:
        name = NEVER_RUN if s in ("missing", "never-run", NEVER_RUN) else s
        if name not in STATES:
            raise ServiceError(
                f"unknown partition state {s!r} (states: missing, "
                f"{', '.join(x.value for x in RunState)})",
                "state",
            )
        out.add(name)
    return frozenset(out)


def _ranges(keys: Sequence[str], states: Sequence[str], wanted: str) -> tuple[KeyRange, ...]:
    out: list[KeyRange] = []
    start = -1
    for i, state in enumerate([*states, ""]):
        if state == wanted and start < 0:
            start = i
        elif state != wanted and start >= 0:
            out.append(KeyRange(keys[start], keys[i - 1], i - start))
            start = -1
    return tuple(out)


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
    ) -> PartitionPage:
        """The partitions from ``first`` to ``last`` (keys, both included) whose state is one
        of ``states`` (any when empty), in key order, ``limit`` at most, after ``cursor``."""
        if not 1 <= limit <= MAX_PAGE:
            raise ServiceError(f"limit must be between 1 and {MAX_PAGE}", "limit")
        wanted = state_filter(states)
        name, parts = self._parts(pipeline)
        keys = self._keys(parts, first, last)
        start = 0
        if cursor is not None:
            try:
                start = keys.index(cursor) + 1
            except ValueError:
                raise ServiceError(f"cursor {cursor!r} is not a partition here", "cursor") from None
        store = self.ws.store.backfills
        if not wanted:
            chosen, total = keys[start : start + limit + 1], len(keys)
        else:
            matches = self._matcher(name, wanted)
            total = sum(1 for k in keys if matches(k))
            chosen = []
            for k in keys[start:]:
                if matches(k):
                    chosen.append(k)
                    if len(chosen) > limit:
                        break
        found = store.partition_states(name, chosen[:limit])
        shown = tuple(
            PartitionState(k, *found.get(k, (NEVER_RUN, None))) for k in chosen[:limit]
        )
        more = len(chosen) > limit
        return PartitionPage(shown, total, shown[-1].key if more else None)

    def _matcher(self, pipeline: str, wanted: frozenset[str]) -> Callable[[str], bool]:
        """Whether a key's state is one of ``wanted``, reading only the kept status rows of
        the states that decide it."""
        store = self.ws.store.backfills
        if NEVER_RUN in wanted:
            others = store.partitions_in_states(pipeline, set(STATES) - wanted - {NEVER_RUN})
            return lambda k: k not in others
        included = store.partitions_in_states(pipeline, wanted)
        return lambda k: k in included

    @action("partitions.read")
    def summary(
        self,
        pipeline: str,
        *,
        granularity: str | None = None,
        first: str | None = None,
        last: str | None = None,
    ) -> PartitionSummary:
        """Counts by state (overall and per ``granularity`` bucket of time partitions) and the
        ranges of failed and never-run partitions, from ``first`` to ``last``."""
        if granularity is not None and granularity not in GRANULARITIES:
            raise ServiceError(
                f"granularity must be one of {', '.join(GRANULARITIES)}", "granularity"
            )
        name, parts = self._parts(pipeline)
        if granularity is not None and parts.time_dimension is None:
            raise ServiceError(
                f"pipeline {pipeline!r} has no time partitions to group by {granularity}",
                "granularity",
            )
        keys, states = self._states(name, parts, first, last)
        counts: dict[str, int] = {}
        for s in states:
            counts[s] = counts.get(s, 0) + 1
        buckets = () if granularity is None else tuple(
            self._buckets(parts, keys, states, granularity)
        )
        return PartitionSummary(
            pipeline=pipeline,
            total=len(keys),
            counts=counts,
            failed=_ranges(keys, states, RunState.FAILED.value),
            missing=_ranges(keys, states, NEVER_RUN),
            granularity=granularity,
            buckets=buckets,
        )

    # -- internals -----------------------------------------------------------------------

    def _parts(self, pipeline: str) -> tuple[str, PartitionSet]:
        """The pipeline's name and partitions, as this actor sees it."""
        pipe = self._sight().pipeline(pipeline)
        parts = pipe.automation.partitions
        if parts is None:
            raise NotFoundError(f"pipeline {pipe.name!r} has no partitions")
        return pipe.name, parts

    def _keys(self, parts: PartitionSet, first: str | None, last: str | None) -> list[str]:
        """The keys from ``first`` to ``last`` that exist now, in key order."""
        keys = parts.keys(self.ws.clock())
        try:
            lo = 0 if first is None else keys.index(parts.get(first).key)
            hi = len(keys) - 1 if last is None else keys.index(parts.get(last).key)
        except ValueError as exc:
            field = "from" if first else "to"
            raise ServiceError(f"no such partition here: {exc}", field) from None
        if lo > hi:
            raise ServiceError(f"the range ends ({last}) before it starts ({first})", "to")
        return keys[lo : hi + 1]

    def _states(
        self, pipeline: str, parts: PartitionSet, first: str | None, last: str | None
    ) -> tuple[list[str], list[str]]:
        """The keys from ``first`` to ``last`` that exist now, and the state of each (from
        the kept status: one row per partition with a run, whatever the runs behind it)."""
        keys = self._keys(parts, first, last)
        found = self.ws.store.backfills.partition_state_map(pipeline)
        return keys, [found.get(k, NEVER_RUN) for k in keys]

    @staticmethod
    def _buckets(
        parts: PartitionSet, keys: Sequence[str], states: Sequence[str], granularity: str
    ) -> list[Bucket]:
        """Counts by state per bucket, oldest first. With two dimensions a bucket gathers
        every key whose time falls in it, wherever the other dimension puts it."""
        fmt = GRANULARITIES[granularity]
        if granularity != "hour" and _time_slowest(parts):
            return _contiguous_buckets(parts, keys, states, fmt)
        found: dict[str, tuple[int, int, dict[str, int]]] = {}
        for i, (key, state) in enumerate(zip(keys, states, strict=True)):
            label = _label(parts.get(key).start, fmt)
            lo, hi, counts = found.get(label, (i, i, {}))
            counts[state] = counts.get(state, 0) + 1
            found[label] = (min(lo, i), max(hi, i), counts)
        return [
            Bucket(label, keys[lo], keys[hi], counts)
            for label, (lo, hi, counts) in sorted(found.items())
        ]


def _label(start: datetime | None, fmt: str) -> str:
    return "" if start is None else start.strftime(fmt)


def _time_slowest(parts: PartitionSet) -> bool:
    """Whether keys in order have their time windows in order: one time dimension, which
    varies slowest (``MultiPartitions`` orders its product so)."""
    dims = getattr(parts, "parts", (parts,))
    return sum(isinstance(d, TimeWindows) for d in dims) == 1


def _contiguous_buckets(
    parts: PartitionSet, keys: Sequence[str], states: Sequence[str], fmt: str
) -> list[Bucket]:
    """Buckets of keys whose windows are in key order: each bucket's end found by a
    galloping search, so a key's window is worked out a few times per bucket, not once per
    key (100,000 hours are 137 months)."""

    def label(i: int) -> str:
        return _label(parts.get(keys[i]).start, fmt)

    out: list[Bucket] = []
    i, n = 0, len(keys)
    while i < n:
        here = label(i)
        lo, step = i, 1  # label(lo) == here; then label(hi) != here, or hi == n
        while lo + step < n and label(lo + step) == here:
            lo, step = lo + step, step * 2
        hi = min(lo + step, n)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if label(mid) == here else (lo, mid)
        out.append(Bucket(here, keys[i], keys[lo], dict(Counter(states[i : lo + 1]))))
        i = lo + 1
    return out
