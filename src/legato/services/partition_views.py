"""What the partitions service answers (pages, summaries, grids of partitions, ranges of
keys) and the pure functions that shape it from keys and their states: grouping keys into
time buckets, folding states into ranges, keeping the newest ranges.
"""

from __future__ import annotations

import dataclasses
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from legato.domain.states import RunState
from legato.services import partition_counting as counting
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet

NEVER_RUN = counting.NEVER_RUN
#: State names a filter takes: the run states, and "never run" (also "missing").
STATES = (NEVER_RUN, *(s.value for s in RunState))
MAX_PAGE = 1000
#: Ranges of failed and of never-run partitions a summary lists by default (the newest):
#: ten years of hours with a failure every other day are 5,000 of them.
MAX_RANGES = 100
#: Bucket sizes of the summary of time partitions, and how each labels a window's start.
GRANULARITIES = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}
#: How many characters of a time key (padded to an hour, see ``time_label``) each names.
LABEL_LENGTH = counting.LABEL_LENGTH
UNIT_LABEL = counting.UNIT_LABEL
WITHIN = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2})?)?)?")


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


def ranges_of(keys: Sequence[str], states: Sequence[str], wanted: str) -> tuple[KeyRange, ...]:
    out: list[KeyRange] = []
    start = -1
    for i, state in enumerate([*states, ""]):
        if state == wanted and start < 0:
            start = i
        elif state != wanted and start >= 0:
            out.append(KeyRange(keys[start], keys[i - 1], i - start))
            start = -1
    return tuple(out)


def index_of(keys: list[str], key: str, ordered: bool) -> int:
    """Where ``key`` is in ``keys`` (-1 if not there): by bisection when they sort."""
    if ordered:
        i = bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else -1
    try:
        return keys.index(key)
    except ValueError:
        return -1


def bucket(keys: Sequence[str], span: counting.Span) -> Bucket:
    return Bucket(span.label, keys[span.lo], keys[span.hi - 1], span.counts)


def summed(found: Sequence[counting.Span]) -> dict[str, int]:
    out: dict[str, int] = {}
    for span in found:
        for state, n in span.counts.items():
            out[state] = out.get(state, 0) + n
    return out


def runs_of(
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


def check_granularity(pipeline: str, parts: PartitionSet, granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ServiceError(f"granularity must be one of {', '.join(GRANULARITIES)}", "granularity")
    if parts.time_dimension is None:
        raise ServiceError(
            f"pipeline {pipeline!r} has no time partitions to group by {granularity}",
            "granularity",
        )


def count_states(states: Sequence[str]) -> dict[str, int]:
    return dict(Counter(states))


def time_key(parts: PartitionSet) -> Callable[[str], str]:
    """The time part of a key (the key itself with one dimension)."""
    time_dim = parts.time_dimension
    if time_dim is None or len(parts.dimensions) == 1:
        return lambda key: key
    at = parts.dimensions.index(time_dim.name)
    return lambda key: key.split("|")[at]


def other_key(parts: PartitionSet) -> Callable[[str], str]:
    """The part of a key that is not time ("" with one dimension)."""
    time_dim = parts.time_dimension
    if time_dim is None or len(parts.dimensions) == 1:
        return lambda _: ""
    other = 1 - parts.dimensions.index(time_dim.name)
    return lambda key: key.split("|")[other]


def time_label(parts: PartitionSet, granularity: str) -> Callable[[str], str]:
    """A key's bucket label, as its window's local start would print by ``GRANULARITIES``.

    Read off the key's text (its local start: "YYYY-MM" monthly, "YYYY-MM-DD" daily and
    weekly, "YYYY-MM-DDTHH:MM+HH:MM" hourly) rather than parsing 10^5 keys into windows.
    """
    n = LABEL_LENGTH[granularity]
    time_of = time_key(parts)
    time_dim = parts.time_dimension
    if time_dim is not None and LABEL_LENGTH[UNIT_LABEL[time_dim.unit]] >= n:
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


def within_keys(parts: PartitionSet, keys: list[str], within: str) -> list[str]:
    """The keys whose window starts within a year, month, day or hour ("2026-03")."""
    if parts.time_dimension is None or not WITHIN.fullmatch(within):
        raise ServiceError(
            f"within {within!r}: expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH of time "
            "partitions",
            "within",
        )
    granularity = next(g for g, n in LABEL_LENGTH.items() if n == len(within))
    label = time_label(parts, granularity)
    # Keys are in time order (with two dimensions, time-major) and a window's local start
    # never goes back a whole hour, so labels do not decrease: the match is one slice.
    lo = bisect_left(keys, within, key=label)
    return keys[lo : bisect_right(keys, within, lo=lo, key=label)]


def buckets(
    keys: Sequence[str], states: Sequence[str], label: Callable[[str], str]
) -> tuple[Bucket, ...]:
    """Counts by state per bucket, oldest first, of keys in time order (labels do not
    decrease, see ``within_keys``)."""
    return tuple(
        Bucket(name, keys[lo], keys[hi - 1], count_states(states[lo:hi]))
        for name, lo, hi in counting.spans(keys, label)
    )


def group(
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


def newest_ranges(summary: PartitionSummary, ranges: int | None) -> PartitionSummary:
    """``summary`` listing only the newest ``ranges`` of each kind, and how many in all."""
    failed, missing = summary.failed, summary.missing
    return dataclasses.replace(
        summary,
        failed=failed if ranges is None else failed[len(failed) - ranges:] if ranges else (),
        missing=missing if ranges is None else missing[len(missing) - ranges:] if ranges else (),
        failed_ranges=len(failed),
        missing_ranges=len(missing),
    )
