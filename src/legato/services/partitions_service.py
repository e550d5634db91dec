"""Partitions at scale: pages of partitions filtered by state and key range, and a summary
(counts by state, overall and per time bucket, and the ranges of failed and missing keys).

Ten years of hourly data are ~100,000 partitions: listing them all is no way to find last
week's failures. A page holds at most ``MAX_PAGE`` partitions; the summary names ranges, not
keys.
"""

from __future__ import annotations

import dataclasses
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.domain.states import RunState
from legato.services import partition_counting as counting
from legato.services.gate import Service, action
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

NEVER_RUN = counting.NEVER_RUN
#: State names a filter takes: the run states, and "never run" (also "missing").
STATES = (NEVER_RUN, *(s.value for s in RunState))
MAX_PAGE = 1000
#: Ranges of failed and of never-run partitions a summary lists by default (the newest):
#: ten years of hours with a failure every other day are 5,000 of them.
MAX_RANGES = 100
#: Bucket sizes of the summary of time partitions, and how each labels a window's start.
GRANULARITIES = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}
#: How many characters of a time key (padded to an hour, see ``_time_label``) each names.
_LABEL_LENGTH = counting.LABEL_LENGTH
_UNIT_LABEL = counting.UNIT_LABEL
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
    failed: tuple[KeyRange, ...]  # the newest ``ranges`` of them (all: failed_ranges)
    missing: tuple[KeyRange, ...]  # never run; the newest ``ranges`` (all: missing_ranges)
    granularity: str | None
    buckets: tuple[Bucket, ...]
    failed_ranges: int = 0  # how many ranges of failed partitions there are in all
    missing_ranges: int = 0


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
        name, parts = self._parts(pipeline)
        keys, ordered = self._window(parts, first, last, within)
        start = 0
        if cursor is not None:
            start = _index(keys, cursor, ordered)
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
            _check_granularity(pipeline, parts, granularity)
        keys, ordered = self._window(parts, first, last, within)
        counted = self._counted_summary(name, parts, keys, ordered, granularity, ranges)
        if counted is not None:
            return counted
        summary = self._summary(pipeline, name, parts, keys, ordered, granularity)
        return _newest_ranges(summary, ranges)

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
        keys, ordered = self._window(parts, first, last, within)
        if self._countable(name, parts, ordered, granularity):
            n = _LABEL_LENGTH[granularity]
            found = counting.counted(self.ws.store.backfills, name, keys, n)
            if found is not None:
                cells = [GridRow("", tuple(_bucket(keys, b) for b in found.spans))] if keys else []
                return PartitionGrid(
                    pipeline, granularity, len(keys), _summed(found.spans), tuple(cells)
                )
        states = [s for s, _ in self._found(name, keys, ordered)]
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

    def _window(
        self, parts: PartitionSet, first: str | None, last: str | None, within: str | None
    ) -> tuple[list[str], bool]:
        """The keys from ``first`` to ``last`` (whose window starts ``within`` a time) that
        exist now, and whether they sort as text (then a range of text is this window)."""
        keys = parts.keys(self.ws.clock())
        ordered = counting.text_ordered(parts, keys)
        try:
            lo = 0 if first is None else _index(keys, parts.get(first).key, ordered)
            hi = len(keys) - 1 if last is None else _index(keys, parts.get(last).key, ordered)
            if min(lo, hi) < 0:
                raise ValueError(first if lo < 0 else last)
        except ValueError as exc:
            field = "from" if first else "to"
            raise ServiceError(f"no such partition here: {exc}", field) from None
        if lo > hi:
            raise ServiceError(f"the range ends ({last}) before it starts ({first})", "to")
        keys = keys[lo : hi + 1]
        if within:
            keys = _within(parts, keys, within)
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
        failed_at, n_failed = _runs(keys, found.at.get(failed, []), ranges)
        missing_at, n_missing = _runs(keys, found.at.get(NEVER_RUN, []), ranges)
        return PartitionSummary(
            pipeline=pipeline,
            total=len(keys),
            counts=_summed(found.spans),
            failed=failed_at,
            missing=missing_at,
            granularity=granularity,
            buckets=tuple(_bucket(keys, b) for b in found.spans) if granularity else (),
            failed_ranges=n_failed,
            missing_ranges=n_missing,
        )


def _index(keys: list[str], key: str, ordered: bool) -> int:
    """Where ``key`` is in ``keys`` (-1 if not there): by bisection when they sort."""
    if ordered:
        i = bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else -1
    try:
        return keys.index(key)
    except ValueError:
        return -1


def _bucket(keys: Sequence[str], span: counting.Span) -> Bucket:
    return Bucket(span.label, keys[span.lo], keys[span.hi - 1], span.counts)


def _summed(found: Sequence[counting.Span]) -> dict[str, int]:
    out: dict[str, int] = {}
    for span in found:
        for state, n in span.counts.items():
            out[state] = out.get(state, 0) + n
    return out


def _runs(
    keys: Sequence[str], at: Sequence[int], newest: int | None
) -> tuple[tuple[KeyRange, ...], int]:
    """The newest ``newest`` (None: all) runs of consecutive indexes ``at`` (sorted) as
    ranges of ``keys``, and how many runs there are: thousands of failed partitions make
    thousands of runs, of which a summary shows a hundred."""
    starts = [j for j in range(len(at)) if j == 0 or at[j] != at[j - 1] + 1]
    bounds = list(zip(starts, [*starts[1:], len(at)], strict=False))  # none if ``at`` is
    if newest is not None:
        bounds = bounds[len(bounds) - newest :] if newest else []
    return tuple(KeyRange(keys[at[a]], keys[at[b - 1]], b - a) for a, b in bounds), len(starts)


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
    """Counts by state per bucket, oldest first, of keys in time order (labels do not
    decrease, see ``_within``)."""
    return tuple(
        Bucket(name, keys[lo], keys[hi - 1], _count(states[lo:hi]))
        for name, lo, hi in counting.spans(keys, label)
    )


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


def _newest_ranges(summary: PartitionSummary, ranges: int | None) -> PartitionSummary:
    """``summary`` listing only the newest ``ranges`` of each kind, and how many in all."""
    failed, missing = summary.failed, summary.missing
    return dataclasses.replace(
        summary,
        failed=failed if ranges is None else failed[len(failed) - ranges:] if ranges else (),
        missing=missing if ranges is None else missing[len(missing) - ranges:] if ranges else (),
        failed_ranges=len(failed),
        missing_ranges=len(missing),
    )
