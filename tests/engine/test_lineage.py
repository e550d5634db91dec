"""Which lineage events a driver's step tells of: a run's start and end, a task's first start
and its end, nothing for a retry's start or for a task canceled before it ran."""

from __future__ import annotations

from datetime import UTC, datetime

from legato import pipeline, task
from legato.domain.records import NewEvent
from legato.engine.lineage import RunLineage

AT = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
RUN = "019af1c2e3d4a1b2c3d4"


@task(consumes=["shop.orders", "shop.customers"], produces="staging.orders")
def clean() -> int:
    return 1


@task(produces="warehouse.daily_sales")
def load(n: int) -> None: ...


@task
def report() -> None: ...


@pipeline
def nightly():
    load(clean())
    report()


def lineage() -> RunLineage:
    return RunLineage(nightly, namespace="retail", run_id=RUN, partition=None, params={},
                      window=None)


def told(*events: tuple[str | None, str, str]) -> list[tuple[str, str]]:
    step = [
        NewEvent(RUN, key, "run_state" if key is None else "task_state", old, new, AT, "why")
        for key, old, new in events
    ]
    return [(e.event_type, e.body["job"]["name"]) for e in lineage().events(step)]


def test_starts_and_ends_of_the_run_and_its_tasks() -> None:
    assert told(
        (None, "queued", "running"),
        ("clean", "queued", "running"),
        ("clean", "running", "up_for_retry"),
        ("clean", "up_for_retry", "running"),  # a retry: the task run started already
        ("clean", "running", "succeeded"),
        ("load", "running", "failed"),
        ("report", "pending", "canceled"),  # never ran: nothing to tell
        (None, "running", "canceled"),
    ) == [
        ("START", "nightly"),
        ("START", "nightly.clean"),
        ("COMPLETE", "nightly.clean"),
        ("FAIL", "nightly.load"),
        ("ABORT", "nightly"),
    ]


def test_a_run_canceled_while_queued_tells_nothing() -> None:
    assert told((None, "queued", "canceled"), ("clean", "pending", "canceled")) == []


def test_the_datasets_join_the_tasks_up() -> None:
    run = lineage()
    assert run.inputs == {
        "clean": ["shop.orders", "shop.customers"], "load": ["staging.orders"], "report": []
    }
    assert run.run_inputs == ["shop.orders", "shop.customers"]
    assert run.run_outputs == ["staging.orders", "warehouse.daily_sales"]
    (aborted,) = run.events([NewEvent(RUN, None, "run_state", "running", "canceled", AT, "x")])
    assert aborted.body["run"]["facets"]["errorMessage"]["message"] == "x"
