"""What a ``check_failed`` alert says about a check result from the alert outbox.

An alert is about one check of one asset (or, for a task producing none, of one task),
whatever the partition or run: it stays open while that check keeps failing and is
resolved by the check's next pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from legato.domain.alert_records import AlertFact
from legato.observability.notice_text import failing_rows, sample_text


@dataclass(frozen=True)
class CheckFinding:
    """A check result as the alert evaluator reads it from its fact."""

    key: str  # the alert's subject: "asset:CHECK" or "pipeline.task:CHECK"
    check: str
    asset: str | None
    severity: str  # the check's: warn | block
    passed: bool
    title: str
    message: str
    details: tuple[tuple[str, str], ...]


def check_finding(fact: AlertFact) -> CheckFinding:
    """The finding a ``check_result`` fact holds (``alert_store.check_fact_message``)."""
    data: dict[str, Any] = json.loads(fact.message or "{}")
    check, asset = str(data.get("check", "")), data.get("asset")
    task = (fact.task_key or "").split("[", 1)[0]  # every element of a mapped task alike
    owner = asset or f"{fact.pipeline}.{task}"
    where = f"{owner} {fact.partition}" if fact.partition else owner
    outcome = data.get("outcome")
    what = "could not be evaluated" if outcome == "error" else "failed"
    details = [("Check", check), ("Asset", asset or ""), ("Check severity", data.get("severity"))]
    details += [
        ("Failing rows", failing_rows(data.get("failed_count"), data.get("total_count"))),
        ("Sample", sample_text(data.get("sample") or ())),
    ]
    return CheckFinding(
        key=f"{owner}:{check}",
        check=check,
        asset=asset,
        severity=str(data.get("severity", "block")),
        passed=outcome == "passed",
        title=f"Check {what}: {check} on {where}",
        message=str(data.get("message") or ""),
        details=tuple((label, str(value)) for label, value in details if value),
    )
