"""Which OpenLineage events a driver's step tells of, with the datasets they name.

A run's events are a START when it starts running and a COMPLETE, FAIL or ABORT when it
ends; each task is a child run (job ``pipeline.task``, the parent run facet pointing at the
run's) with its own START when its first attempt starts and its end. A task's inputs are the
assets it consumes and those its upstream tasks produce (their outputs are its inputs); its
outputs are the assets it produces. The run's inputs are the assets its tasks read that none
of them makes; its outputs, every asset its tasks produce. The events go into the step's
``Changes`` (``lineage``), which the store writes with the step's state changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from legato.definitions.pipeline import Pipeline
from legato.domain.records import NewEvent, NewLineageEvent
from legato.domain.states import RunState, TaskState
from legato.observability import lineage_events as ol

_RUN_ENDS = {
    RunState.SUCCEEDED.value: ol.COMPLETE,
    RunState.FAILED.value: ol.FAIL,
    RunState.CANCELED.value: ol.ABORT,
}
_TASK_ENDS = {
    TaskState.SUCCEEDED.value: ol.COMPLETE,
    TaskState.FAILED.value: ol.FAIL,
    TaskState.CANCELED.value: ol.ABORT,
}
# A task whose attempt was interrupted goes back to these before it runs again.
_NOT_STARTED = {TaskState.PENDING.value, TaskState.QUEUED.value}


class RunLineage:
    """The lineage of one run of ``pipeline``: turns the run's state events into
    OpenLineage run events (``events``)."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        namespace: str,
        run_id: str,
        partition: str | None,
        params: Mapping[str, Any],
        window: tuple[datetime, datetime] | None,
    ) -> None:
        ol.check_available()
        self.namespace = namespace
        self.pipeline = pipeline.name
        self.run_id = run_id
        self.partition = partition
        self.params = dict(params)  # as stored: secret params read "****"
        self.window = window
        nodes = pipeline.graph.nodes
        self.outputs = {k: [a.key for a in n.task.produces] for k, n in nodes.items()}
        self.inputs: dict[str, list[str]] = {}
        for key, node in nodes.items():
            read = [a.key for a in node.task.consumes]
            for up in node.upstream:
                read += [k for k in self.outputs.get(up, ()) if k not in read]
            self.inputs[key] = read
        made = {k for keys in self.outputs.values() for k in keys}
        self.run_inputs = _unique(k for keys in self.inputs.values() for k in keys
                                  if k not in made)
        self.run_outputs = _unique(k for keys in self.outputs.values() for k in keys)

    def events(self, step: Sequence[NewEvent]) -> list[NewLineageEvent]:
        """The lineage events of one step's ``step`` events, in their order."""
        out: list[NewLineageEvent] = []
        for e in step:
            if e.kind == "run_state":
                if e.new_state == RunState.RUNNING.value and e.old_state == RunState.QUEUED.value:
                    out.append(self._event(ol.START, None, e))
                elif e.new_state in _RUN_ENDS and e.old_state != RunState.QUEUED.value:
                    # A run canceled while queued never started: it tells nothing.
                    out.append(self._event(_RUN_ENDS[str(e.new_state)], None, e))
            elif e.kind == "task_state" and e.task_key in self.outputs:
                key = e.task_key
                # A retry comes from up_for_retry: its task run started already.
                if e.new_state == TaskState.RUNNING.value and e.old_state in _NOT_STARTED:
                    out.append(self._event(ol.START, key, e))
                elif e.new_state in _TASK_ENDS and (
                    e.new_state != TaskState.CANCELED.value or e.old_state not in _NOT_STARTED
                ):  # a task canceled before it ran had no START: it tells nothing
                    out.append(self._event(_TASK_ENDS[str(e.new_state)], key, e))
        return out

    def _event(self, kind: str, task: str | None, e: NewEvent) -> NewLineageEvent:
        job = ol.JobRun(self.namespace, self.pipeline, self.run_id, task)
        failed = kind in (ol.FAIL, ol.ABORT) and e.message
        body = ol.run_event(
            kind,
            job,
            e.at,
            inputs=self.run_inputs if task is None else self.inputs[task],
            outputs=self.run_outputs if task is None else self.outputs[task],
            partition=self.partition,
            params=self.params,
            window=self.window,
            error=e.message if failed else None,
        )
        return NewLineageEvent(self.run_id, kind, body, e.at)


def _unique(keys: Any) -> list[str]:
    return list(dict.fromkeys(keys))
