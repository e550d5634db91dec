"""OpenLineage run events of runs and their tasks, built with the ``openlineage-python``
client's own classes (so that what is sent keeps to the spec the client is generated from).

The client is imported when the first event is built: only a project with ``[lineage]``
builds any (``pip install 'legato[lineage]'``). Plain values go in and the event's JSON comes
out, which is what the outbox keeps; nothing here reads the store or the definitions.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

#: Who made the events (the ``producer`` of each event and facet).
PRODUCER = "https://pypi.org/project/legato/"
#: Where the schema of Legato's own run facet (``legato``) is described.
FACET_SCHEMA = "https://pypi.org/project/legato/#lineage-run-facet"
#: Legato's run outcomes as OpenLineage event types.
START, COMPLETE, FAIL, ABORT = "START", "COMPLETE", "FAIL", "ABORT"


class LineageUnavailable(RuntimeError):
    """``[lineage]`` is set but the openlineage-python client is not installed."""


@dataclass(frozen=True)
class JobRun:
    """One OpenLineage job run: a Legato run (``task`` None) or one of its tasks."""

    namespace: str
    pipeline: str
    run_id: str  # Legato's run id
    task: str | None = None

    @property
    def job_name(self) -> str:
        """``pipeline``, or ``pipeline.task`` for a task's child run."""
        return self.pipeline if self.task is None else f"{self.pipeline}.{self.task}"

    @property
    def run_uuid(self) -> str:
        """The job run's OpenLineage id (``lineage_run_id``)."""
        return lineage_run_id(self.run_id, self.task)


def lineage_run_id(run_id: str, task: str | None = None) -> str:
    """A UUIDv7 for Legato's ``run_id`` (or one of its tasks), the same every time.

    Run ids start with 12 hex digits of milliseconds since the epoch: they become the UUID's
    time, so OpenLineage consumers order runs as Legato does; the rest comes from a hash.
    """
    try:
        millis = int(run_id[:12], 16)
    except ValueError:
        millis = 0
    digest = hashlib.sha256(f"{run_id}\0{task or ''}".encode()).digest()
    rand = int.from_bytes(digest[:10], "big")
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # the RFC 4122 variant
    value |= rand & (2**62 - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@cache
def _client() -> Any:
    try:
        from openlineage.client import event_v2
        from openlineage.client.generated import (
            error_message_run,
            nominal_time_run,
            parent_run,
        )
        from openlineage.client.generated.base import RunFacet
    except ImportError:
        raise LineageUnavailable(
            "[lineage] needs the OpenLineage client: pip install 'legato[lineage]'"
        ) from None
    import attr

    @attr.define
    class LegatoRunFacet(RunFacet):
        """Legato's own run facet: its run id, pipeline, task, partition and params."""

        runId: str
        pipeline: str
        task: str | None = attr.field(default=None)
        partition: str | None = attr.field(default=None)
        params: dict[str, Any] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return FACET_SCHEMA

    class Client:
        ev = event_v2
        error = error_message_run
        nominal = nominal_time_run
        parent = parent_run
        facet = LegatoRunFacet

    return Client


def check_available() -> None:
    """LineageUnavailable unless the OpenLineage client can be imported."""
    _client()


def run_event(
    event_type: str,
    job: JobRun,
    at: datetime,
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    partition: str | None = None,
    params: Mapping[str, Any] | None = None,
    window: tuple[datetime, datetime] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The JSON of one RunEvent about ``job`` at ``at``: its datasets (asset keys, in the
    job's namespace), the parent run facet for a task, the nominal time facet for a
    partition's window, the error message facet of a failure and Legato's own facet."""
    ol = _client()
    from openlineage.client.serde import Serde

    facets: dict[str, Any] = {
        "legato": ol.facet(
            runId=job.run_id, pipeline=job.pipeline, task=job.task, partition=partition,
            params=dict(params or {}), producer=PRODUCER,
        ),
    }
    if window is not None:
        facets["nominalTime"] = ol.nominal.NominalTimeRunFacet(
            nominalStartTime=_iso(window[0]), nominalEndTime=_iso(window[1]), producer=PRODUCER
        )
    if error is not None:
        facets["errorMessage"] = ol.error.ErrorMessageRunFacet(
            message=error, programmingLanguage="python", producer=PRODUCER
        )
    if job.task is not None:
        parent = JobRun(job.namespace, job.pipeline, job.run_id)
        facets["parent"] = ol.parent.ParentRunFacet(
            run=ol.parent.Run(runId=parent.run_uuid),
            job=ol.parent.Job(namespace=job.namespace, name=parent.job_name),
            root=ol.parent.Root(
                run=ol.parent.RootRun(runId=parent.run_uuid),
                job=ol.parent.RootJob(namespace=job.namespace, name=parent.job_name),
            ),
            producer=PRODUCER,
        )
    event = ol.ev.RunEvent(
        eventType=ol.ev.RunState(event_type),
        eventTime=_iso(at),
        run=ol.ev.Run(runId=job.run_uuid, facets=facets),
        job=ol.ev.Job(namespace=job.namespace, name=job.job_name),
        inputs=[ol.ev.InputDataset(namespace=job.namespace, name=k) for k in inputs],
        outputs=[ol.ev.OutputDataset(namespace=job.namespace, name=k) for k in outputs],
        producer=PRODUCER,
    )
    return dict(Serde.to_dict(event))
