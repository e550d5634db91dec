"""What a data-quality check is, as declared: ``@task(checks=[...])``.

The built-in checks (``legato.checks.not_null("order_id")``...) and custom ones build a
``Check``; how a check is evaluated on a frame, an Arrow table or a SQL table is
``legato.quality``'s business, not the authoring API's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SEVERITIES", "Check"]

#: ``warn`` records the result and goes on; ``block`` fails the producing task once its
#: output is written, before any downstream task reads it.
SEVERITIES = ("warn", "block")


@dataclass(frozen=True)
class Check:
    """One check of a task's output (or of an asset it produces).

    ``kind`` names the built-in ("not_null", "unique", "accepted_values", "row_count",
    "schema", "relationship", "freshness", "sql", "predicate", "pandera"); ``args`` its
    arguments; ``fn`` the callable of a custom one; ``asset`` the asset it checks when the
    task produces several. ``name`` is what the check is shown and stored as.
    """

    name: str
    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "block"
    asset: str | None = None
    fn: Callable[..., Any] | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"check {self.name!r}: severity must be 'warn' or 'block', got {self.severity!r}"
            )
