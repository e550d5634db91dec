"""Small functions the Dask executor runs inside the Dask scheduler (``run_on_scheduler``).

The scheduler of an external cluster (``dask scheduler``) need not have Legato installed:
only the workers run Legato's code. So these functions are pickled *by value*
(``cloudpickle.register_pickle_by_value`` on this module, done by ``legato.executors.dask``)
and must stay self-contained: standard library only, imports inside the functions.
Each one is defensive about the scheduler's internals, which differ between versions of
``distributed``.
"""

from __future__ import annotations

from typing import Any


def allowed_failures(dask_scheduler: Any = None) -> int | None:
    """How many worker deaths a task survives before it errs with KilledWorker."""
    value = getattr(dask_scheduler, "allowed_failures", None)
    return int(value) if value is not None else None


def processing_on(key: str, dask_scheduler: Any = None) -> str | None:
    """The address of the worker running task ``key``, or None (queued, done, unknown)."""
    ts = dask_scheduler.tasks.get(key) if dask_scheduler is not None else None
    ws = getattr(ts, "processing_on", None)
    return str(ws.address) if ws is not None else None


def bound_topic(topic: str, maxlen: int, dask_scheduler: Any = None) -> bool:
    """Keep at most ``maxlen`` past events of ``topic`` in the scheduler's memory.

    Subscribers receive every event as it is published whatever the length; the retained
    copies only serve ``get_events``. Log chunks are large and many, and the default
    retention (``distributed.scheduler.events-log-length``, 100,000 per topic) would let a
    long-lived scheduler hoard gigabytes of them. Returns whether it could be done.
    """
    import collections

    topics = getattr(getattr(dask_scheduler, "_broker", None), "_topics", None)
    if topics is None:
        return False
    try:
        topic_state = topics[topic]  # created if new (a defaultdict); subscribers are kept
        topic_state.events = collections.deque(topic_state.events, maxlen=maxlen)
    except Exception:
        return False
    return True


def drop_topic(topic: str, dask_scheduler: Any = None) -> None:
    """Forget ``topic`` and its retained events (the executor that used it has stopped)."""
    topics = getattr(getattr(dask_scheduler, "_broker", None), "_topics", None)
    if topics is not None:
        topics.pop(topic, None)
