"""A run limited to some tasks and their upstream: which tasks run, which reuse an older
run's results, which are skipped (``legato materialize``).

Pure: what an older run's rows hold and whether a row may be reused are given; reading the
store, the result store and the assets' freshness is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace

from legato.definitions.graph import Graph
from legato.domain.records import TaskRunRecord
from legato.domain.states import TaskState

__all__ = ["Narrowed", "narrow", "narrowed_rows"]


@dataclass(frozen=True)
class Narrowed:
    """The nodes of a narrowed run: ``run`` start pending, ``reuse`` copy an older run's
    rows, ``skip`` are not needed; each in graph order."""

    run: tuple[str, ...]
    reuse: tuple[str, ...]
    skip: tuple[str, ...]


def narrow(graph: Graph, targets: Collection[str], usable: Callable[[str], bool]) -> Narrowed:
    """The targets run; each node upstream of them is reused when ``usable(node)`` says its
    older row may be and every node upstream of it is reused too (a node downstream of one
    that runs again would read stale inputs); every other node is skipped."""
    needed = set(targets).union(*(graph.ancestors(t) for t in targets))
    reuse: set[str] = set()
    for node_id, node in graph.nodes.items():  # topological: upstream decided first
        if (
            node_id in needed
            and node_id not in targets
            and all(u in reuse for u in node.upstream)
            and usable(node_id)
        ):
            reuse.add(node_id)
    order = list(graph.nodes)
    return Narrowed(
        run=tuple(n for n in order if n in needed and n not in reuse),
        reuse=tuple(n for n in order if n in reuse),
        skip=tuple(n for n in order if n not in needed),
    )


def narrowed_rows(
    graph: Graph,
    chosen: Narrowed,
    old_rows: Mapping[str, list[TaskRunRecord]],
    old_run_id: str | None,
    new_id: str,
    skip_reason: str,
) -> list[TaskRunRecord]:
    """The new run's task rows: a reused node's rows (a mapped node's elements with it)
    copied from ``old_rows`` (by node) and marked ``reused_from`` the run whose result they
    hold; a node to run pending; a node not needed skipped with ``skip_reason``."""
    reuse, skip = set(chosen.reuse), set(chosen.skip)
    rows: list[TaskRunRecord] = []
    for node_id in graph.nodes:
        if node_id in reuse:
            rows.extend(
                replace(r, run_id=new_id, reused_from=r.reused_from or old_run_id, worker=None)
                for r in old_rows[node_id]
            )
        elif node_id in skip:
            rows.append(
                TaskRunRecord(
                    new_id, node_id, node_id, None, TaskState.SKIPPED, error=skip_reason
                )
            )
        else:
            rows.append(TaskRunRecord(new_id, node_id, node_id, None, TaskState.PENDING))
    return rows
