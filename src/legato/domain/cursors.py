"""Incremental cursor windows: the ``(low, high]`` range of a cursor column one run reads.

A window is kept in the store per pipeline, cursor name and scope (a partition, else a run), so
that reading it again (a retried attempt, a resumed run, a re-run of the partition) gives the
same rows. Its bounds are kept as JSON that remembers their Python type (``encode_value``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from numbers import Integral
from typing import Any

#: What a bound may be: the types a cursor column comes back as from a database driver.
BOUND_TYPES = "datetime, date, int, float, Decimal, str or None"


@dataclass(frozen=True, slots=True)
class Window:
    """The rows a run reads: ``low < cursor <= high``.

    ``low`` None: from the start (the first window). ``high`` None: the source had no rows,
    so the window holds none.
    """

    low: Any
    high: Any

    @property
    def empty(self) -> bool:
        """Whether no row can fall in it."""
        return self.high is None or (self.low is not None and self.low == self.high)


@dataclass(frozen=True, slots=True)
class CursorWindow:
    """A window as the store keeps it: whose it is, and who opened it when."""

    pipeline: str
    name: str
    scope: str
    window: Window
    run_id: str
    created_at: datetime


def partition_scope(partition: str) -> str:
    """The scope of a partition's windows: every run of the partition reads the same one."""
    return f"partition:{partition}"


def run_scope(run_id: str) -> str:
    """The scope of a run without a partition: its attempts and resumes read the same one."""
    return f"run:{run_id}"


def encode_value(value: Any) -> str | None:
    """``value`` as JSON naming its type (None stays None); raise TypeError for other types."""
    if value is None:
        return None
    kind: str
    text: Any
    if isinstance(value, bool):
        kind, text = "bool", value
    elif isinstance(value, datetime):  # before date: a datetime is a date
        kind, text = "datetime", value.isoformat()
    elif isinstance(value, date):
        kind, text = "date", value.isoformat()
    elif isinstance(value, Integral):  # numpy's integers too
        kind, text = "int", int(value)
    elif isinstance(value, Decimal):
        kind, text = "decimal", str(value)
    elif isinstance(value, float):
        kind, text = "float", value
    elif isinstance(value, str):
        kind, text = "str", value
    else:
        raise TypeError(
            f"a cursor bound must be a {BOUND_TYPES}, not {type(value).__name__} ({value!r})"
        )
    return json.dumps({"type": kind, "value": text})


_DECODERS: dict[str, Any] = {
    "bool": bool,
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "int": int,
    "decimal": Decimal,
    "float": float,
    "str": str,
}


def decode_value(text: str | None) -> Any:
    """The value ``encode_value`` wrote as ``text``."""
    if text is None:
        return None
    found = json.loads(text)
    return _DECODERS[found["type"]](found["value"])


def later(low: Any, current: Any) -> Any:
    """The new high of a window from ``low``: the source's ``current`` max, never below ``low``
    (rows deleted at the source must not make the next window read old rows again)."""
    if low is None or current is None:
        return low if current is None else current
    try:
        return low if current < low else current
    except TypeError:  # the column changed type (e.g. naive to aware): trust the source
        return current
