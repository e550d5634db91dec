"""Masking secret values in text shown to people: logs, error messages, tracebacks.

A value is replaced by ``****`` wherever it appears whole; a value of several lines is also
masked line by line (a task printing a PEM key through a logger prefixes each line), except
lines too short to be told from ordinary text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

__all__ = ["MASK", "Masker"]

#: What a masked value reads as.
MASK = "****"
#: Lines of a multi-line value shorter than this are not masked on their own.
_MIN_LINE = 6


@dataclass(frozen=True)
class Masker:
    """Replaces each of ``values`` (and the long lines of multi-line ones) by ``****``."""

    values: frozenset[str] = frozenset()

    @classmethod
    def of(cls, values: Iterable[str]) -> Masker:
        """A masker for ``values`` (empty ones are left out: they would mask nothing)."""
        out: set[str] = set()
        for value in values:
            if not value:
                continue
            out.add(value)
            if "\n" in value:
                out.update(line for line in value.splitlines() if len(line.strip()) >= _MIN_LINE)
        return cls(frozenset(out))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __or__(self, other: Masker) -> Masker:
        return Masker(self.values | other.values)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.values:
            return None
        # Longest first: a value holding another is masked whole, not around the shorter one.
        ordered = sorted(self.values, key=len, reverse=True)
        return re.compile("|".join(re.escape(v) for v in ordered))

    def mask(self, text: str) -> str:
        """``text`` with every value replaced by ``****``."""
        pattern = self._pattern
        return text if pattern is None or not text else pattern.sub(MASK, text)

    def mask_cut(self, text: str, ellipsis: str = "…") -> str:
        """``mask`` of a text that may have been cut short (ending in ``ellipsis``): a value
        whose beginning is all that is left at the cut is masked too."""
        text = self.mask(text)
        if not text.endswith(ellipsis):
            return text
        body = text[: -len(ellipsis)]
        for value in sorted(self.values, key=len, reverse=True):
            for k in range(min(len(value) - 1, len(body)), 0, -1):
                if body.endswith(value[:k]):
                    return body[:-k] + MASK + ellipsis
        return text

    def mask_bytes(self, data: bytes) -> bytes:
        """``mask`` over UTF-8 bytes (bytes that are not UTF-8 are kept as they are)."""
        if not self.values or not data:
            return data
        text = data.decode("utf-8", errors="surrogateescape")
        return self.mask(text).encode("utf-8", errors="surrogateescape")

    def longest(self) -> int:
        """The length of the longest value (what a reader of a growing text holds back)."""
        return max((len(v) for v in self.values), default=0)
