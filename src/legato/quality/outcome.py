"""A check's outcome, and the failing rows it carries made small and JSON-able."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

__all__ = ["SAMPLE_ROWS", "CheckOutcome", "Found", "jsonable", "sample_of"]

#: At most this many failing rows are kept with an outcome.
SAMPLE_ROWS = 10
#: Texts longer than this are cut (with "…") in a sample; wider rows lose their last columns.
_TEXT = 200
_COLUMNS = 50
_ITEMS = 20

Outcome = Literal["passed", "failed", "error"]


@dataclass(frozen=True)
class CheckOutcome:
    """What evaluating one check gave.

    ``failed_count`` counts the failing rows of ``total_count`` (None for checks of the
    whole data: row count, schema, freshness); ``sample`` holds up to ten failing rows as
    JSON-able dicts, long values cut.
    """

    name: str
    severity: str
    outcome: Outcome
    failed_count: int | None = None
    total_count: int | None = None
    sample: tuple[Mapping[str, Any], ...] = ()
    message: str = ""
    asset: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def blocks(self) -> bool:
        """Whether this outcome stops the data from going downstream: a blocking check that
        failed or could not be evaluated."""
        return self.severity == "block" and self.outcome != "passed"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "asset": self.asset,
            "severity": self.severity,
            "outcome": self.outcome,
            "failed_count": self.failed_count,
            "total_count": self.total_count,
            "sample": [dict(row) for row in self.sample],
            "message": self.message,
        }


@dataclass(frozen=True)
class Found:
    """What a check found, before it is named an outcome."""

    ok: bool
    message: str
    failed: int | None = None
    total: int | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it, texts and collections cut short."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else (None if math.isnan(value) else str(value))
    if isinstance(value, str):
        return value if len(value) <= _TEXT else value[:_TEXT] + "…"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return jsonable(base64.b64encode(bytes(value[:_TEXT])).decode("ascii"))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in list(value.items())[:_ITEMS]}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in list(value)[:_ITEMS]]
    item = getattr(value, "item", None)  # numpy and pandas scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return jsonable(str(value))


def sample_of(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Up to SAMPLE_ROWS rows, each JSON-able and at most _COLUMNS wide."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if len(out) == SAMPLE_ROWS:
            break
        out.append({str(k): jsonable(v) for k, v in list(row.items())[:_COLUMNS]})
    return out
