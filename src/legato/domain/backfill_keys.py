"""The partitions a backfill runs, kept as ranges and named keys rather than one key each.

A backfill of ten years of hours is 100,000 partitions; without ``--all`` it skips those that
succeeded or are under way, so it is a few stretches of that range. It is stored as spans:
a span is the ``start``..``stop - 1`` keys (in key order) of the partition range
``first``..``last``; a key named on its own is a span of one whose range is itself. The keys
themselves are worked out a few at a time from the pipeline's partitions, when runs are made
or a page of them is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: ``resolve(first, last, start, stop)``: keys ``start``..``stop - 1`` of range first..last.
Resolver = Callable[[str, str, int, int], list[str]]


@dataclass(frozen=True, slots=True)
class KeySpan:
    """Keys ``start``..``stop - 1`` of the partition range ``first``..``last``."""

    first: str
    last: str
    start: int
    stop: int

    @property
    def count(self) -> int:
        return self.stop - self.start

    @property
    def named(self) -> bool:
        """A key given by name (its range is itself)."""
        return self.first == self.last and self.start == 0 and self.stop == 1

    def keys(self, resolve: Resolver, start: int, stop: int) -> list[str]:
        """This span's keys ``start``..``stop - 1`` (counted within the span)."""
        if self.named:
            return [self.first][start:stop]
        lo, hi = self.start + start, min(self.start + stop, self.stop)
        return resolve(self.first, self.last, lo, hi) if lo < hi else []


@dataclass(frozen=True, slots=True)
class BackfillKeys:
    """A backfill's partitions, in the order its runs are made."""

    spans: tuple[KeySpan, ...]

    @classmethod
    def named(cls, keys: Iterable[str]) -> BackfillKeys:
        """Keys given one by one (repeats dropped: one run per partition)."""
        return cls(tuple(KeySpan(k, k, 0, 1) for k in dict.fromkeys(keys)))

    @classmethod
    def within(cls, first: str, last: str, chosen: Iterable[int]) -> BackfillKeys:
        """The keys at positions ``chosen`` (increasing) of the range ``first``..``last``,
        consecutive positions kept as one span."""
        spans: list[KeySpan] = []
        lo = prev = -2
        for i in chosen:
            if i <= prev:
                raise ValueError("positions must increase")
            if i != prev + 1:
                if lo >= 0:
                    spans.append(KeySpan(first, last, lo, prev + 1))
                lo = i
            prev = i
        if lo >= 0:
            spans.append(KeySpan(first, last, lo, prev + 1))
        return cls(tuple(spans))

    @property
    def total(self) -> int:
        return sum(s.count for s in self.spans)

    def keys(self, resolve: Resolver, start: int = 0, stop: int | None = None) -> list[str]:
        """Keys ``start``..``stop - 1`` of the backfill (all to the end without ``stop``)."""
        out: list[str] = []
        end = self.total if stop is None else min(stop, self.total)
        at = 0  # position of the span's first key in the backfill
        for span in self.spans:
            if at >= end:
                break
            if at + span.count > start:
                out += span.keys(resolve, max(0, start - at), end - at)
            at += span.count
        return out

    def to_json(self) -> list[Any]:
        """As stored: a named key as itself, a span as [first, last, start, stop]."""
        return [s.first if s.named else [s.first, s.last, s.start, s.stop] for s in self.spans]

    @classmethod
    def from_json(cls, items: Sequence[Any]) -> BackfillKeys:
        """What :meth:`to_json` wrote (a list of plain keys, as older backfills were kept,
        reads as named keys)."""
        return cls(tuple(
            KeySpan(i, i, 0, 1) if isinstance(i, str) else KeySpan(*i) for i in items
        ))
