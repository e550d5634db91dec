"""Partitions at scale: pages of partitions filtered by state and key range, and a summary
(counts by state, overall and per time bucket, and the ranges of failed and missing keys).

Ten years of hourly data are ~100,000 partitions: listing them all is no way to find last
week's failures. A page holds at most ``MAX_PAGE`` partitions; the summary names ranges, not
keys.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
#: How many characters of a time key (padded to an hour, see ``_time_label``) each names.
_LABEL_LENGTH = {"year": 4, "month": 7, "day": 10, "hour": 13}
#: The finest label each unit's keys spell out.
_UNIT_LABEL = {"hourly": "hour", "daily": "day", "weekly": "day", "monthly": "month"}
_WITHIN = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2})?)?)?")


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
class GridRow:
    """One key of the dimension that is not time ("" with one dimension), and its buckets."""

    label: str
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class PartitionGrid:
    """Counts by state per time bucket, one row per key of the other dimension (if any)."""

    pipeline: str
    granularity: str
    total: int
    counts: dict[str, int]
    rows: tuple[GridRow, ...]


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
        within: str | None = None,
    ) -> PartitionPage:
        """The partitions from ``first`` to ``last`` (keys, both included) whose state is one
        of ``states`` (any when empty), in key order, ``limit`` at most, after ``cursor``;
        ``within`` ("2026", "2026-03", "2026-03-01" or "2026-03-01T05"): only those whose
        time window starts then."""
        if not 1 <= limit <= MAX_PAGE:
            raise ServiceError(f"limit must be between 1 and {MAX_PAGE}", "limit")
        wanted = state_filter(states)
        keys, found = self._states(*self._parts(pipeline), first, last, within)
        start = 0
        if cursor is not None:
            try:
                start = keys.index(cursor) + 1
            except ValueError:
                raise ServiceError(f"cursor {cursor!r} is not a partition here", "cursor") from None
        matches = [i for i, s in enumerate(found) if not wanted or s[0] in wanted]
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
    ) -> PartitionSummary:
        """Counts by state (overall and per ``granularity`` bucket of time partitions) and the
        ranges of failed and never-run partitions, from ``first`` to ``last`` (and
        ``within`` a time, as ``page`` takes it)."""
        name, parts = self._parts(pipeline)
        if granularity is not None:
            _check_granularity(pipeline, parts, granularity)
        keys, found = self._states(name, parts, first, last, within)
        states = [s for s, _ in found]
        counts = _count(states)
        buckets: tuple[Bucket, ...] = ()
        if granularity is not None:
            label = _time_label(parts, granularity)
            buckets = _buckets(keys, states, label)
        return PartitionSummary(
            pipeline=pipeline,
            total=len(keys),
            counts=counts,
            failed=_ranges(keys, states, RunState.FAILED.value),
            missing=_ranges(keys, states, NEVER_RUN),
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
        _check_granularity(pipeline, parts, granularity)
        keys, found = self._states(name, parts, first, last, within)
        states = [s for s, _ in found]
        label = _time_label(parts, granularity)
        if len(parts.dimensions) == 1:
            rows = [GridRow("", _buckets(keys, states, label))] if keys else []
        else:
            rows = _group(keys, states, label, _other_key(parts))
        return PartitionGrid(pipeline, granularity, len(keys), _count(states), tuple(rows))

    # -- internals -----------------------------------------------------------------------

    def _parts(self, pipeline: str) -> tuple[str, PartitionSet]:
        """The pipeline's name and partitions, as this actor sees it."""
        pipe = self._sight().pipeline(pipeline)
        parts = pipe.automation.partitions
        if parts is None:
            raise NotFoundError(f"pipeline {pipe.name!r} has no partitions")
        return pipe.name, parts

    def _states(
        self,
        pipeline: str,
        parts: PartitionSet,
        first: str | None,
        last: str | None,
        within: str | None = None,
    ) -> tuple[list[str], list[tuple[str, str | None]]]:
        """The keys from ``first`` to ``last`` (whose window starts ``within`` a time) that
        exist now, and (state, newest run id) of each."""
        now = self.ws.clock()
        keys = parts.keys(now)
        try:
            lo = 0 if first is None else keys.index(parts.get(first).key)
            hi = len(keys) - 1 if last is None else keys.index(parts.get(last).key)
        except ValueError as exc:
            field = "from" if first else "to"
            raise ServiceError(f"no such partition here: {exc}", field) from None
        if lo > hi:
            raise ServiceError(f"the range ends ({last}) before it starts ({first})", "to")
        keys = keys[lo : hi + 1]
        if within:
            keys = _within(parts, keys, within)
        # The kept status: one row per partition with a run, whatever the runs behind it.
        newest = self.ws.store.backfills.partition_states(pipeline)
        never: tuple[str, str | None] = (NEVER_RUN, None)
        return keys, [newest.get(k, never) for k in keys]


def _check_granularity(pipeline: str, parts: PartitionSet, granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ServiceError(f"granularity must be one of {', '.join(GRANULARITIES)}", "granularity")
    if parts.time_dimension is None:
        raise ServiceError(
            f"pipeline {pipeline!r} has no time partitions to group by {granularity}",
            "granularity",
        )


def _count(states: Sequence[str]) -> dict[str, int]:
    return dict(Counter(states))


def _time_key(parts: PartitionSet) -> Callable[[str], str]:
    """The time part of a key (the key itself with one dimension)."""
    time_dim = parts.time_dimension
    if time_dim is None or len(parts.dimensions) == 1:
        return lambda key: key
    at = parts.dimensions.index(time_dim.name)
    return lambda key: key.split("|")[at]


def _other_key(parts: PartitionSet) -> Callable[[str], str]:
    """The part of a key that is not time ("" with one dimension)."""
    time_dim = parts.time_dimension
    if time_dim is None or len(parts.dimensions) == 1:
        return lambda _: ""
    other = 1 - parts.dimensions.index(time_dim.name)
    return lambda key: key.split("|")[other]


def _time_label(parts: PartitionSet, granularity: str) -> Callable[[str], str]:
    """A key's bucket label, as its window's local start would print by ``GRANULARITIES``.

    Read off the key's text (its local start: "YYYY-MM" monthly, "YYYY-MM-DD" daily and
    weekly, "YYYY-MM-DDTHH:MM+HH:MM" hourly) rather than parsing 10^5 keys into windows.
    """
    n = _LABEL_LENGTH[granularity]
    time_of = _time_key(parts)
    time_dim = parts.time_dimension
    if time_dim is not None and _LABEL_LENGTH[_UNIT_LABEL[time_dim.unit]] >= n:
        if len(parts.dimensions) == 1:
            return lambda key: key[:n]  # the common case, 10^5 times a page: a slice
        return lambda key: time_of(key)[:n]

    def label(key: str) -> str:
        t = time_of(key)
        if len(t) == 7:
            t += "-01T00"
        elif len(t) == 10:
            t += "T00"
        return t[:n]

    return label


def _within(parts: PartitionSet, keys: list[str], within: str) -> list[str]:
    """The keys whose window starts within a year, month, day or hour ("2026-03")."""
    if parts.time_dimension is None or not _WITHIN.fullmatch(within):
        raise ServiceError(
            f"within {within!r}: expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH of time "
            "partitions",
            "within",
        )
    granularity = next(g for g, n in _LABEL_LENGTH.items() if n == len(within))
    label = _time_label(parts, granularity)
    # Keys are in time order (with two dimensions, time-major) and a window's local start
    # never goes back a whole hour, so labels do not decrease: the match is one slice.
    lo = bisect_left(keys, within, key=label)
    return keys[lo : bisect_right(keys, within, lo=lo, key=label)]


def _buckets(
    keys: Sequence[str], states: Sequence[str], label: Callable[[str], str]
) -> tuple[Bucket, ...]:
    """Counts by state per bucket, oldest first, of keys in time order: each bucket's end
    found by bisection (labels do not decrease, see ``_within``), a few hundred label reads
    for 10^5 keys."""
    out, lo = [], 0
    while lo < len(keys):
        name = label(keys[lo])
        hi = bisect_right(keys, name, lo=lo, key=label)
        out.append(Bucket(name, keys[lo], keys[hi - 1], _count(states[lo:hi])))
        lo = hi
    return tuple(out)


def _group(
    keys: Sequence[str],
    states: Sequence[str],
    label: Callable[[str], str],
    row: Callable[[str], str],
) -> list[GridRow]:
    """Counts by state per (row, bucket): rows in the order met, buckets oldest first. A
    bucket's first and last keys are the first and last met in key order."""
    found: dict[str, dict[str, list[Any]]] = {}
    at: tuple[str, str] | None = None
    cell: list[Any] = []  # first key, last key, counts by state
    for key, state in zip(keys, states, strict=True):
        where = (row(key), label(key))
        if where != at:  # neighbours mostly share a cell: no lookup
            at = where
            cell = found.setdefault(where[0], {}).setdefault(where[1], [key, key, {}])
        cell[1] = key
        counts = cell[2]
        counts[state] = counts.get(state, 0) + 1
    return [
        GridRow(r, tuple(Bucket(n, lo, hi, c) for n, (lo, hi, c) in sorted(cells.items())))
        for r, cells in found.items()
    ]
