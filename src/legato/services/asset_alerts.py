"""The ``asset_stale`` alert condition: an asset stale under its own freshness policy.

Each asset with a policy (``Asset.freshness``) and a producing task is judged as the catalog
judges it (``asset_freshness``) at the evaluation's ``now``. A rule covers an asset when it
covers the pipeline of one of its producing tasks (names, globs, tags, like every rule).

One alert per asset and missing partition (subject ``ASSET/PARTITION``), resolved when that
partition is materialized; for an asset without time windows one alert per asset (subject
``ASSET``), resolved when a materialization makes it fresh again. An asset the code no
longer declares (or no longer gives a policy) resolves its alerts too: nothing is watched.
Assets are judged again when a run finished (the pass has facts) or every ``INTERVAL``: a
large catalog is not judged every second.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from legato.definitions.asset_graph import AssetGraph, AssetNode, asset_graph
from legato.services.asset_freshness import due_partitions, judge

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.observability.alert_rules import AlertRule
    from legato.services.alert_evaluation import Evaluator

CONDITION = "asset_stale"

#: How often assets are judged again when no run has finished since (daemons evaluate every
#: second; judging 10,000 assets takes a few hundred milliseconds).
INTERVAL = timedelta(seconds=15)

_lock = threading.Lock()
# The graph of the newest pipelines seen (a project's mapping lives as long as its load),
# and when their assets were last judged; the mapping is held, so its id is not reused.
_graphs: dict[int, tuple[Mapping[str, Pipeline], AssetGraph]] = {}
_judged: dict[int, tuple[Mapping[str, Pipeline], datetime]] = {}


def _due(pipelines: Mapping[str, Pipeline], now: datetime, news: bool) -> bool:
    """Whether to judge now: a run finished (``news``), or INTERVAL passed since the last
    time (or the clock went back)."""
    with _lock:
        last = _judged.get(id(pipelines))
        recent = last is not None and last[0] is pipelines and last[1] <= now < last[1] + INTERVAL
        if recent and not news:
            return False
        if len(_judged) >= 4 and id(pipelines) not in _judged:
            _judged.clear()
        _judged[id(pipelines)] = (pipelines, now)
    return True


def _graph(pipelines: Mapping[str, Pipeline]) -> AssetGraph:
    with _lock:
        cached = _graphs.get(id(pipelines))
        if cached is not None and cached[0] is pipelines:
            return cached[1]
    graph = asset_graph(pipelines.values())
    with _lock:
        if len(_graphs) >= 4:
            _graphs.clear()
        _graphs[id(pipelines)] = (pipelines, graph)
    return graph


def _rules_for(node: AssetNode, rules: list[AlertRule], ev: Evaluator) -> list[AlertRule]:
    out = []
    for rule in rules:
        if not rule.watches_asset(node.asset.key):
            continue
        for ref in node.producers:
            pipe = ev.pipelines.get(ref.pipeline)
            if rule.covers(ref.pipeline, pipe.tags if pipe is not None else ()):
                out.append(rule)
                break
    return out


def evaluate_asset_stale(ev: Evaluator) -> None:
    """Raise ``asset_stale`` alerts for stale assets and resolve those that cleared."""
    from legato.services.alert_evaluation import Subject

    rules = [r for r in ev.rules.values() if r.condition == CONDITION]
    opened = ev.evaluation.open_alerts(CONDITION)
    if not rules and not opened:
        return
    now = ev.now
    if not _due(ev.pipelines, now, ev.had_facts):
        return
    graph = _graph(ev.pipelines)
    watched = {
        n.key: (n, covering)
        for n in graph.nodes.values()
        if n.asset.freshness is not None and n.producers
        if (covering := _rules_for(n, rules, ev))
    }
    open_assets = {a.subject.partition("/")[0] for a in opened}
    judged = [graph.nodes[k] for k in set(watched) | open_assets if k in graph.nodes]
    due_of = {n.key: due_partitions(n.partition_set, n.asset.freshness, now) for n in judged}
    wanted = {k: [p.key for p in due] for k, due in due_of.items()}
    present = ev.evaluation.materialized_partitions(wanted)
    # Open alerts of partitions not due any more must see their own partition too.
    for alert in opened:
        asset, _, partition = alert.subject.partition("/")
        if partition and partition not in wanted.get(asset, ()):
            present |= ev.evaluation.materialized_partitions({asset: [partition]})
    newest = ev.evaluation.newest_materialized([n.key for n in judged])
    made: dict[str, set[str]] = {}
    for asset, partition in present:
        made.setdefault(asset, set()).add(partition)
    states = {
        n.key: judge(
            lag=n.asset.freshness,
            partitions=n.partition_set,
            now=now,
            newest_at=newest.get(n.key),
            present=made.get(n.key, ()),
            due=due_of[n.key],
        )
        for n in judged
    }
    for alert in opened:
        asset, _, partition = alert.subject.partition("/")
        state = states.get(asset)
        if state is None or state.state == "none":
            ev.resolve(alert, f"{asset} has no freshness policy any more")
        elif partition and (asset, partition) in present:
            ev.resolve(alert, f"partition {partition} was materialized")
        elif not partition and state.state == "fresh":
            ev.resolve(alert, "a materialization made it fresh")
    for key, (node, covering) in sorted(watched.items()):
        state = states[key]
        if not state.stale:
            continue
        pipeline = node.producers[0].pipeline
        details = (("asset", key), ("why", state.why or ""))
        subjects = (
            [Subject(f"{key}/{p}", f"Stale asset: {key} {p}: {state.why}", pipeline,
                     partition=p, details=details) for p in state.missing]
            if state.missing
            else [Subject(key, f"Stale asset: {key}: {state.why}", pipeline, details=details)]
        )  # fmt: skip
        for rule in covering:
            for subject in subjects:
                ev.raise_alert(rule, subject)
