"""What retention took from a run that stays: its logs, or its tasks' results.

The store marks such runs (``store/retention_store.py``); these helpers turn the marks into
what readers say ("results pruned") and into the tasks a re-run must run again because the
results it would have reused are gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from legato.domain.states import TaskState

if TYPE_CHECKING:
    from legato.definitions.graph import Graph
    from legato.domain.records import TaskRunRecord
    from legato.services.workspace import Workspace

#: What a reader says of a run's logs or results removed by retention.
LOGS_PRUNED_NOTE = "logs pruned: removed by retention ([retention] logs in legato.toml)"
RESULTS_PRUNED_NOTE = "results pruned: removed by retention ([retention] results in legato.toml)"


def pruned_notes(pruned: Iterable[str]) -> list[str]:
    """What a run page or `legato show` says of a run's ``pruned`` ("logs", "results")."""
    notes = {"logs": LOGS_PRUNED_NOTE, "results": RESULTS_PRUNED_NOTE}
    return [notes[p] for p in sorted(pruned) if p in notes]


def owner(row: TaskRunRecord) -> str:
    """The run whose folder holds a task run's result (a reused one stays in its first run)."""
    return row.reused_from or row.run_id


def gone_nodes(ws: Workspace, rows: Iterable[TaskRunRecord]) -> set[str]:
    """The tasks among ``rows`` that succeeded but whose results were removed."""
    done = [r for r in rows if r.state == TaskState.SUCCEEDED]
    gone_runs = ws.store.retention.results_gone({owner(r) for r in done})
    return {r.node for r in done if owner(r) in gone_runs}


def with_gone_upstream(graph: Graph, redo: set[str], gone: set[str]) -> set[str]:
    """``redo`` grown by the upstream tasks it reads whose results are gone (and theirs),
    with everything downstream of those."""
    while True:
        needed = set().union(*(graph.ancestors(n) for n in redo)) - redo
        again = needed & gone
        if not again:
            return redo
        redo = redo | graph.descendants(again)


def rerun_note(old_id: str, again: set[str]) -> list[str]:
    """The origin note of a re-run that runs ``again`` tasks (and what is downstream of
    them) it would have reused, because their results are gone."""
    if not again:
        return []
    return [
        f"results of run {old_id} pruned by retention: {', '.join(sorted(again))} "
        f"run{'s' if len(again) == 1 else ''} again"
    ]
