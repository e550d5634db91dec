"""Counting a time set's partitions by state in the database, per bucket of key text.

One dimension of time partitions has keys whose text sorts as their windows do and starts
with each window's year, month, day and hour ("2026-03-01T05:00+00:00"). Then a window of
keys is a range of text, a bucket is a prefix of it, and the kept status answers counts by
state per bucket with one GROUP BY over an index range: a few hundred rows for 10^5
partitions, never a state per partition carried into Python. The keys themselves (kept by
the partition set) give each bucket's size and ends; a bucket's partitions with no status
row never ran.

This rests on the status holding only keys of the set, as runs are created for keys it
names; a definition changed under old runs (another time zone: other keys between these)
breaks it. So each process reads a pipeline's status whole once per set and counts here
only if every row is a key (``only_keys``); else, or where a bucket counts more rows than
keys, the caller counts key by key.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.store.backfill_store import BackfillStore

NEVER_RUN = "never run"
#: Characters of a key naming its year, month, day, hour.
LABEL_LENGTH = {"year": 4, "month": 7, "day": 10, "hour": 13}
#: The finest label each unit's keys spell out at their start.
UNIT_LABEL = {"hourly": "hour", "daily": "day", "weekly": "day", "monthly": "month"}
#: Missing partitions are found by month: months with all their keys present are skipped.
_MONTH = LABEL_LENGTH["month"]

_ORDER_LOCK = threading.Lock()
#: Per partition set, how many of its keys were checked and whether they sort as text.
_ORDERED: dict[PartitionSet, tuple[int, bool]] = {}

#: Per store, pipeline and partition set, whether its status rows were all keys when read.
_ONLY_KEYS: WeakKeyDictionary[BackfillStore, dict[tuple[str, PartitionSet], bool]] = (
    WeakKeyDictionary()
)


@dataclass(frozen=True)
class Span:
    """Keys ``lo`` to ``hi - 1`` of a window sharing one label, and their counts by state."""

    label: str
    lo: int
    hi: int
    counts: dict[str, int]


def text_ordered(parts: PartitionSet, keys: Sequence[str]) -> bool:
    """Whether ``keys`` (the set's keys now, growing only at the end) strictly increase as
    text; checked once per set and then only for keys new since."""
    if len(parts.dimensions) != 1 or parts.time_dimension is None:
        return False
    with _ORDER_LOCK:
        seen, ok = _ORDERED.get(parts, (0, True))
        if ok and len(keys) > seen:
            ok = all(a < b for a, b in pairwise(keys[max(0, seen - 1) :]))
            _ORDERED[parts] = (len(keys), ok)
        return ok


def only_keys(
    backfills: BackfillStore, pipeline: str, parts: PartitionSet, keys: Sequence[str]
) -> bool:
    """Whether each status row of ``pipeline`` is one of ``keys`` (the set's keys now):
    read once per process and set, as later rows come from runs of keys of this set."""
    with _ORDER_LOCK:
        known = _ONLY_KEYS.setdefault(backfills, {}).get((pipeline, parts))
    if known is None:
        known = set(backfills.partition_states(pipeline)) <= set(keys)
        with _ORDER_LOCK:
            _ONLY_KEYS[backfills][(pipeline, parts)] = known
    return known


def prefix_length(parts: PartitionSet, granularity: str | None) -> int | None:
    """How many characters of a key name its ``granularity`` bucket, when they do (the
    keys spell that bucket out at their start); None otherwise. Month at least: missing
    partitions are looked for a month at a time."""
    time_dim = parts.time_dimension
    if time_dim is None or len(parts.dimensions) != 1:
        return None
    length = max(LABEL_LENGTH[granularity] if granularity else 0, _MONTH)
    return length if LABEL_LENGTH[UNIT_LABEL[time_dim.unit]] >= length else None


def spans(
    keys: Sequence[str], label: Callable[[str], str], lo: int = 0, hi: int | None = None
) -> list[tuple[str, int, int]]:
    """(label, first index, end index) of each run of keys sharing a label, keys being in
    label order: each run's end found by bisection, a few hundred label reads for 10^5."""
    out, end = [], len(keys) if hi is None else hi
    while lo < end:
        name = label(keys[lo])
        stop = bisect_right(keys, name, lo=lo, hi=end, key=label)
        out.append((name, lo, stop))
        lo = stop
    return out


def counted_spans(
    backfills: BackfillStore, pipeline: str, keys: Sequence[str], length: int
) -> list[Span] | None:
    """Counts by state of each ``length``-character label of ``keys`` (a window of a set
    whose keys sort as text and start with such labels), grouped by the database; None if
    a label counts more rows than keys."""
    if not keys:
        return []
    rows = backfills.partition_label_counts(pipeline, length, keys[0], keys[-1])
    out = []
    for name, lo, hi in spans(keys, lambda k: k[:length]):
        counts = dict(rows.get(name, {}))
        never = (hi - lo) - sum(counts.values())
        if never < 0:
            return None
        if never:
            counts[NEVER_RUN] = never
        out.append(Span(name, lo, hi, counts))
    return out


def merged(found: Sequence[Span], length: int) -> list[Span]:
    """``found`` (consecutive spans) summed up by the first ``length`` characters of their
    labels."""
    out: list[Span] = []
    for span in found:
        name = span.label[:length]
        if out and out[-1].label == name:
            last = out[-1]
            counts = dict(last.counts)
            for state, n in span.counts.items():
                counts[state] = counts.get(state, 0) + n
            out[-1] = Span(name, last.lo, span.hi, counts)
        else:
            out.append(Span(name, span.lo, span.hi, dict(span.counts)))
    return out


def missing_positions(
    backfills: BackfillStore, pipeline: str, keys: Sequence[str], months: Iterable[Span]
) -> list[int]:
    """Indexes in ``keys`` of the partitions that never ran, looking only in the months
    (spans of ``keys`` by month) counting some: months with none are skipped unread."""
    out: list[int] = []
    for month in months:
        if not month.counts.get(NEVER_RUN):
            continue
        present = backfills.partitions_between(pipeline, keys[month.lo], keys[month.hi - 1])
        out += [i for i in range(month.lo, month.hi) if keys[i] not in present]
    return out


def positions_in(keys: Sequence[str], found: Iterable[str]) -> list[int]:
    """Sorted indexes in ``keys`` (sorted as text) of the keys of ``found`` that are keys."""
    out = []
    for key in found:
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            out.append(i)
    return sorted(out)
