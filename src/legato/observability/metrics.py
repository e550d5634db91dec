"""Legato's Prometheus metrics: one registry of its own, and its text exposition.

Each figure is counted where its event happens (the run driver, the scheduler's loop, the
listeners, the store's engine) into the module-level ``REGISTRY``, never prometheus-client's
global one, so that an application embedding Legato keeps its own metrics apart. A scrape
(``exposition``) adds two things at that moment:

- figures read from the store by the caller (runs queued and running, pool slots), as
  ``StoreFigures``: they describe the whole store, so every process reports the same values;
- the process's labels (``process`` and ``role``, set by ``set_process``) on every sample,
  so that several ``legato web`` and ``legato scheduler`` processes scraped by one Prometheus
  are told apart even behind one address. ``instance`` and ``job`` are left to Prometheus.

The labels are added at scrape time rather than as label values of each metric, so that the
hot path (a driver recording an attempt) pays for its own labels only.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

__all__ = [
    "ATTEMPTS",
    "ATTEMPT_SECONDS",
    "CONTENT_TYPE",
    "EXECUTOR_BUSY",
    "EXECUTOR_FREE",
    "LEASES_TAKEN_OVER",
    "REGISTRY",
    "RUNS_CREATED",
    "RUNS_DRIVEN",
    "RUNS_FINISHED",
    "RUNS_STARTED",
    "STORE_SECONDS",
    "TICK_LAST",
    "TICK_LATENESS",
    "TICK_SECONDS",
    "TRIGGER_LAG",
    "StoreFigures",
    "attempt_outcome",
    "exposition",
    "prime",
    "process_labels",
    "set_process",
]

#: The ``Content-Type`` of an exposition (Prometheus' text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

# Buckets, in seconds, for each kind of duration: tasks last from milliseconds to hours,
# store statements from microseconds to a second or so.
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf"))
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, float("inf"))
_TICK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, float("inf"))
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, float("inf"))

RUNS_CREATED = Counter(
    "legato_runs_created",
    "Runs created (queued, or started at once by `legato run`), by pipeline and first state.",
    ["pipeline", "state"],
    registry=REGISTRY,
)
RUNS_STARTED = Counter(
    "legato_runs_started",
    "Runs this process began driving from the queue (a resumed run is not counted again).",
    ["pipeline"],
    registry=REGISTRY,
)
RUNS_FINISHED = Counter(
    "legato_runs_finished",
    "Runs that ended, by pipeline and final state (succeeded, failed, canceled).",
    ["pipeline", "state"],
    registry=REGISTRY,
)
ATTEMPT_SECONDS = Histogram(
    "legato_task_attempt_duration_seconds",
    "How long task attempts ran, from start to outcome, by pipeline and task.",
    ["pipeline", "task"],
    buckets=_TASK_BUCKETS,
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "legato_task_attempts",
    "Task attempts that ended, by pipeline and outcome: succeeded, failed, retried (failed "
    "and will run again), timed_out, crashed, interrupted, canceled, skipped.",
    ["pipeline", "outcome"],
    registry=REGISTRY,
)
RUNS_DRIVEN = Gauge(
    "legato_runs_driven",
    "Runs this process is driving now.",
    registry=REGISTRY,
)
TICK_SECONDS = Histogram(
    "legato_scheduler_tick_duration_seconds",
    "How long one scheduler tick took (schedules, upstream triggers, backfills).",
    buckets=_TICK_BUCKETS,
    registry=REGISTRY,
)
TICK_LATENESS = Histogram(
    "legato_scheduler_tick_lateness_seconds",
    "How far behind its due time a scheduler tick ran.",
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
TRIGGER_LAG = Histogram(
    "legato_trigger_event_lag_seconds",
    "From a trigger's event (a message, a file) being seen to its run recorded, by trigger.",
    ["pipeline", "trigger"],
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
LEASES_TAKEN_OVER = Counter(
    "legato_leases_taken_over",
    "Runs this process took over from a driver that died or whose lease ran out.",
    ["pipeline"],
    registry=REGISTRY,
)
EXECUTOR_BUSY = Gauge(
    "legato_executor_workers_busy",
    "Attempts this process's executor is running now.",
    registry=REGISTRY,
)
EXECUTOR_FREE = Gauge(
    "legato_executor_workers_free",
    "Attempts this process's executor could start now (idle workers or threads).",
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "legato_store_statement_duration_seconds",
    "Store statements by kind (select, insert, update, delete, other; step: a driver's "
    "whole step, one transaction).",
    ["operation"],
    buckets=_STORE_BUCKETS,
    registry=REGISTRY,
)

TICK_LAST = Gauge(
    "legato_scheduler_last_tick_timestamp_seconds",
    "When this process's scheduler last ticked (seconds since the epoch).",
    registry=REGISTRY,
)

_OUTCOMES = {"timeout": "timed_out"}
#: The outcomes an alert most often watches: present at 0 from the start (``prime``).
_PRIMED_OUTCOMES = ("succeeded", "failed", "retried", "timed_out", "crashed", "interrupted")
_FINAL_STATES = ("succeeded", "failed", "canceled")


def prime(pipelines: Iterable[str]) -> None:
    """Make the run and attempt counters of ``pipelines`` exist at 0.

    Prometheus' ``increase()`` sees a change only between two samples: a counter first
    exposed at 1 (the first failure ever) would show no increase at all.
    """
    for name in pipelines:
        RUNS_STARTED.labels(name)
        for state in _FINAL_STATES:
            RUNS_FINISHED.labels(name, state)
        for outcome in _PRIMED_OUTCOMES:
            ATTEMPTS.labels(name, outcome)


def attempt_outcome(status: str, *, retried: bool) -> str:
    """The ``outcome`` label of an attempt that ended with ``status`` (the store's word);
    ``retried`` when its task will run again after it failed."""
    if retried and status == "failed":
        return "retried"
    return _OUTCOMES.get(status, status)


@dataclass(frozen=True)
class StoreFigures:
    """What a scrape reads from the store: each is cheap (indexed, no history scanned).

    ``runs``: (pipeline, state) to how many runs, for states ``queued`` and ``running``;
    ``pools``: (name, slots, used) per pool.
    """

    runs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    pools: Sequence[tuple[str, int, int]] = ()


_process: dict[str, str] = {"process": f"{socket.gethostname()}:{os.getpid()}", "role": "cli"}
_process_lock = threading.Lock()


def set_process(*, role: str, process: str | None = None) -> None:
    """Name this process in every sample: ``role`` (up, scheduler, web) and ``process`` (a
    daemon's owner id; by default host:pid)."""
    global _process
    with _process_lock:
        _process = {
            "process": process or f"{socket.gethostname()}:{os.getpid()}",
            "role": role,
        }


def process_labels() -> dict[str, str]:
    """The labels every sample of this process carries."""
    return dict(_process)


def _store_families(figures: StoreFigures) -> Iterator[Metric]:
    for state in ("queued", "running"):
        family = GaugeMetricFamily(
            f"legato_runs_{state}",
            f"Runs {state} now in the store, by pipeline (the same in every process).",
            labels=["pipeline"],
        )
        for (pipeline, s), count in sorted(figures.runs.items()):
            if s == state:
                family.add_metric([pipeline], count)
        yield family
    used = GaugeMetricFamily(
        "legato_pool_slots_used", "Slots of each pool held by running tasks.", labels=["pool"]
    )
    free = GaugeMetricFamily(
        "legato_pool_slots_free", "Slots of each pool no task holds.", labels=["pool"]
    )
    for name, slots, taken in figures.pools:
        used.add_metric([name], taken)
        free.add_metric([name], max(0, slots - taken))
    yield used
    yield free


class _Scrape:
    """One scrape: the registry's families and the store's, each sample with this process's
    labels (a metric's own label of the same name wins)."""

    def __init__(self, extra: Iterable[Metric]) -> None:
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        labels = process_labels()
        for family in (*REGISTRY.collect(), *self.extra):
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [s._replace(labels={**labels, **s.labels}) for s in family.samples]
            yield out


def exposition(figures: StoreFigures | None = None) -> bytes:
    """Every metric of this process in Prometheus' text format, with ``figures`` from the
    store when given."""
    extra = list(_store_families(figures)) if figures is not None else []
    return generate_latest(cast(Any, _Scrape(extra)))
