"""What a person reads of a ``Notice``, whatever the channel: its headline and its facts.

Email and Slack lay these out in their own way; keeping the wording here means a message
says the same thing in a mailbox as in a chat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from legato.observability.channels import Notice

#: How many items of a group a message lists before it says how many more there are.
GROUP_SHOWN = 20
#: Failing rows of a check a message shows, and the characters it gives them at most.
SAMPLE_SHOWN = 3
_SAMPLE_TEXT = 600


def headline(notice: Notice) -> str:
    """The one line a message starts with: the title, said to be resolved or a test."""
    if notice.kind == "resolve" and not notice.title.lower().startswith("resolved"):
        return f"Resolved: {notice.title}"
    if notice.kind == "test" and "test" not in notice.title.lower():
        return f"Test: {notice.title}"
    return notice.title


def facts(notice: Notice) -> list[tuple[str, str]]:
    """Labelled values a reader scans for, in the order they matter to whoever is on call;
    the error is left out (a channel shows it on its own, as code)."""
    shown = [
        ("Pipeline", notice.pipeline),
        ("Partition", notice.partition),
        # A warning check's task did not fail: it is "the task" then, as in a resolve.
        ("Failed task" if notice.kind != "resolve" and notice.condition != "check_failed"
         else "Task", notice.task),
        ("Run", notice.run_id),
    ]
    pairs = [(label, value) for label, value in shown if value]
    pairs += list(notice.details)
    pairs.append(("Rule", f"{notice.rule} ({notice.condition})"))
    if notice.kind != "resolve":
        pairs.append(("Severity", notice.severity))
    pairs.append(("At", when(notice)))
    return pairs


def when(notice: Notice) -> str:
    """The notice's time in UTC, to the second, as people read it."""
    at = notice.at.astimezone(UTC) if notice.at.tzinfo else notice.at
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def shown_items(notice: Notice) -> tuple[list[Notice], int]:
    """The items of a group a message lists, and how many it leaves out."""
    items = list(notice.items[:GROUP_SHOWN])
    return items, len(notice.items) - len(items)


def item_line(item: Notice) -> str:
    """One item of a group on one line: its title and, when there is one, its error."""
    return f"{item.title}: {item.error}" if item.error else item.title


def failing_rows(failed: int | None, total: int | None) -> str | None:
    """A check's failing count as a message says it ("3 of 120 rows"); None for a check of
    the whole data (row count, schema, freshness), whose message says what it found."""
    if failed is None:
        return None
    return f"{failed} of {total} rows" if total is not None else f"{failed} rows"


def sample_text(sample: Sequence[Mapping[str, Any]]) -> str | None:
    """A few failing rows of a check on one line each, as JSON (cut when long)."""
    if not sample:
        return None
    lines = [json.dumps(dict(row), ensure_ascii=False, default=str)
             for row in sample[:SAMPLE_SHOWN]]
    text = "\n".join(lines)
    return text if len(text) <= _SAMPLE_TEXT else text[: _SAMPLE_TEXT - 1] + "…"
