"""Starting a driver's attempts on the executor's free slots: one each, or a batch of queued
attempts; a task of a full pool waits for a slot."""

from __future__ import annotations

from datetime import datetime, timedelta

from legato.definitions.graph import Node
from legato.domain.records import NotFound, TaskRunRecord
from legato.domain.states import TaskState
from legato.engine import plan
from legato.engine.batching import batch_deadline
from legato.engine.driver_state import DriverState
from legato.engine.related import resolve_related
from legato.executors.interface import AttemptSpec

S = TaskState


class DriverDispatch(DriverState):
    """The attempts a driver's step starts, each marked running in the book."""

    def _dispatch(self, free: int | None = None) -> list[list[AttemptSpec]]:
        """The attempts to start now, by slot: one each, or a batch of queued attempts
        (when the executor takes batches and many are queued: a map's elements, a fan)."""
        specs: list[AttemptSpec] = []
        jobs: list[list[AttemptSpec]] = []
        # The executor may be shared: this counts what other runs have left this moment
        # (``free``: what a Conductor counted, less what runs before this one took in a
        # step whose attempts are submitted once all are written).
        free = self.executor.free_slots() if free is None else free
        now = self.clock()
        pools = self.pools
        pools.new_step()
        if pools.due(now):
            # Tasks put aside for a full pool were ready before anything in the queue.
            asked = free > 0
            for key in list(pools.waiting):
                if free <= 0:
                    break
                if self._try_start(key, now, specs):
                    free -= 1
            pools.tried(now, asked=asked)
        queue = self.book.queue
        batching = self._batching
        while queue and free > 0:
            key = queue.popleft()
            if batching is not None and self._batches.batchable(self.rows[key]):
                task = self.pipeline.graph.nodes[self.rows[key].node].task
                size = batching.batch_size(
                    len(queue) + 1, at_once=task.concurrency if task.is_async else 1
                )
                if size > 1:
                    jobs.append(self._start_batch(key, size, now))
                    free -= 1
                    continue
            if self._try_start(key, now, specs):
                free -= 1
        jobs.extend([spec] for spec in specs)
        return jobs

    def _start_batch(self, key: str, size: int, now: datetime) -> list[AttemptSpec]:
        """Start ``key`` and the batchable attempts queued right behind it, ``size`` at
        most, as one batch."""
        row = self.rows[key]
        batch = [self._start(key, row, now)]
        queue = self.book.queue
        while queue and len(batch) < size:
            nxt = queue[0]
            if self.rows[nxt].state != S.QUEUED:
                queue.popleft()  # moved on since it was queued
                self.pools.stop_waiting(nxt)
                continue
            if not self._batches.together(row, self.rows[nxt]):
                break
            queue.popleft()
            batch.append(self._start(nxt, self.rows[nxt], now))
        self._batches.started([spec.task_key for spec in batch])
        task = self.pipeline.graph.nodes[row.node].task
        if task.is_async:
            # The worker times each coroutine out; this deadline is for a blocked loop.
            for spec in batch:
                limit = spec.timeout
                if limit is not None:
                    self.deadlines[spec.task_key] = now + timedelta(
                        seconds=batch_deadline(limit, len(batch), task.concurrency)
                    )
        return batch

    def _try_start(self, key: str, now: datetime, specs: list[AttemptSpec]) -> bool:
        """Start ``key``'s next attempt if it is queued and its pool (if any) has a slot."""
        row = self.rows[key]
        if row.state != S.QUEUED:
            self.pools.stop_waiting(key)
            return False
        node = self.pipeline.graph.nodes[row.node]
        pool = node.task.pool
        if pool is not None:
            try:
                if not self.pools.admit(key, pool, now, self.book.changes.events):
                    return False
            except NotFound:
                msg = (
                    f"pool {pool!r} does not exist in the store (declare it in legato.toml [pools])"
                )
                self.book.set_task(key, S.RUNNING, started_at=now)
                self.book.set_task(key, S.FAILED, msg, error=msg, finished_at=now)
                return False
        specs.append(self._start(key, row, now))
        return True

    def _start(self, key: str, row: TaskRunRecord, now: datetime) -> AttemptSpec:
        node = self.pipeline.graph.nodes[row.node]
        run = self.book.run
        args, kwargs = plan.resolve_inputs(
            node, row.map_index, self.params, self.rows, self.children, self.item_refs,
            self._input_refs,
        )
        attempt = row.attempt + 1
        spec = AttemptSpec(
            run_id=run.id,
            pipeline=self.pipeline.name,
            node=node.id,
            task_key=key,
            map_index=row.map_index,
            attempt=attempt,
            args=args,
            kwargs=kwargs,
            params=self.params,
            partition=run.partition,
            partition_dims=self.partition_dims,
            window=self.window,
            result_key=f"{self._folder}/{key}",
            log_path=self._log_path(key, attempt),
            timeout=node.task.timeout,
            store_items=key in self.items_needed,
            in_process=node.task.in_process,
            max_log_bytes=self.max_log_bytes,
            code_version=self.pipeline.code_version,
            secrets=self.secrets,
            resources=self.resources if _opens_resources(node) else None,
            resource_args=node.resources,
            related=(
                resolve_related(node.task, self.pipeline, self.rows, run.partition, self.store)
                if node.task.checks else ()
            ),
            traceparent=None if self.span is None else self.span.start_attempt(key, attempt, now),
        )
        self.book.set_task(
            key,
            S.RUNNING,
            f"attempt {attempt}",
            attempt=attempt,
            started_at=now,
            finished_at=None,
            next_attempt_at=None,
            error=None,
        )
        if node.task.timeout is not None:
            self.deadlines[key] = now + timedelta(seconds=node.task.timeout)
        return spec


def _opens_resources(node: Node) -> bool:
    """Whether an attempt of ``node`` may open resources: a parameter, the context or a
    check (``sql(resource=)``) asks for one."""
    task = node.task
    return bool(node.resources or task.context_arg or any(
        c.args.get("resource") for c in task.checks))
