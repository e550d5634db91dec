"""Materialize an asset: a run of its producing pipeline limited to the producing task and
its upstream, reusing the inputs that are still good (``legato materialize``, the API's
``POST /assets/{key}/materialize``, the asset page's button).

The run is an ordinary run of the pipeline, with origin ``materialize:KEY``. Its producing
task runs; each task upstream of it is reused (its row copied with ``reused_from``, as a
re-run does) when it succeeded in the newest finished run of the same pipeline, partition,
params and code version, its stored result is still there, everything upstream of it is
reused too and none of the assets it produces is stale; otherwise it runs. Every other task
is skipped. The run's first events ("origin") say what runs, what is reused from which run,
and why a task upstream runs again.

Staleness, until assets have a freshness state of their own: an asset with a freshness
policy is stale when the materialization being reused is older than the policy allows.

Permissions are those of launching a run of the pipeline: ``runs.create`` to queue one,
``runs.launch`` to drive one here; a scoped grant sees only the producers in its pipelines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from legato.domain.states import RunState, TaskState
from legato.services.actor import Actor
from legato.services.gate import Service, action
from legato.services.run_creation import record_run
from legato.services.service_errors import NotFoundError, ServiceError

if TYPE_CHECKING:
    from legato.definitions.asset_graph import AssetGraph
    from legato.definitions.pipeline import Pipeline
    from legato.domain.records import RunRecord, TaskRunRecord
    from legato.engine.driver import ProgressCallback
    from legato.services.workspace import Workspace

__all__ = ["Materialize"]

#: Runs looked through, newest first, for one whose results may be reused: past them, the
#: newest alike is too old to matter (and the search stays a few short index scans).
LOOK_BACK = 500
_PAGE = 100
_FINISHED = [s for s in RunState if s.finished]


class Materialize(Service):
    """Runs that materialize an asset, for one actor."""

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        super().__init__(actor)
        self.ws = ws

    def _for_audit(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # The call names an asset, not a pipeline: the secret params hidden are those of
        # every pipeline producing it.
        from legato.definitions.secret_param import MASKED

        key, params = args[0] if args else kwargs.get("key"), kwargs.get("params")
        if not isinstance(key, str) or not isinstance(params, Mapping):
            return args, kwargs
        secret = {
            n
            for pipe in self.ws.project.pipelines.values()
            if _targets(pipe, key)
            for n, p in pipe.params.items()
            if p.secret
        }
        hidden = {k: MASKED if k in secret else v for k, v in params.items()}
        return args, {**kwargs, "params": hidden}

    @action("runs.create", command=True)
    def queue(
        self,
        key: str,
        *,
        partition: str | None = None,
        params: Mapping[str, Any] | None = None,
        pipeline: str | None = None,
        from_text: bool = False,
    ) -> RunRecord:
        """Queue a run materializing the asset ``key`` (for ``partition``, with ``params``);
        a daemon starts it. ``pipeline`` chooses among several producing pipelines."""
        name = self._producer(key, pipeline)
        return self._record(key, name, partition, params, from_text)

    @action("runs.launch", command=True)
    def here(
        self,
        key: str,
        *,
        partition: str | None = None,
        params: Mapping[str, Any] | None = None,
        pipeline: str | None = None,
        from_text: bool = False,
        on_created: Callable[[RunRecord], None] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> RunRecord:
        """Materialize the asset ``key`` in this process: make the run (as ``queue``), then
        drive it to its end; returns the finished run."""
        from legato.services.driving import RunDriving

        name = self._producer(key, pipeline)
        self.ws.executor()  # fork workers before the store's imports (see Workspace)
        run = self._record(key, name, partition, params, from_text)
        if on_created is not None:
            on_created(run)
        return RunDriving(self.ws).execute(run.id, on_progress=on_progress)

    # -- which pipeline ---------------------------------------------------------------------

    def _producer(self, key: str, pipeline: str | None) -> str:
        """The name of the pipeline whose run materializes ``key``, among those the actor
        sees: the one producing it, or ``pipeline`` when several do."""
        self.ws.refresh()
        sight = self._sight()
        producing: list[str] = []
        readers: list[str] = []
        for pipe in sight.visible():
            if _targets(pipe, key):
                producing.append(pipe.name)
            readers += [
                f"{pipe.name}.{n}"
                for n, node in pipe.graph.nodes.items()
                if any(a.key == key for a in node.task.consumes)
            ]
        if pipeline is not None:
            sight.pipeline(pipeline)  # UnknownPipeline, as for any launch
            if pipeline not in producing:
                made = f" (it is produced in {', '.join(producing)})" if producing else ""
                raise ServiceError(
                    f"pipeline {pipeline!r} has no task producing asset {key!r}{made}", "pipeline"
                )
            return pipeline
        if not producing:
            if not readers:
                raise NotFoundError(f"no asset {key!r}: no task produces or consumes it")
            raise ServiceError(
                f"asset {key!r} has no producer in the project: no task produces it (it is "
                f"read by {', '.join(readers)}), so it is made outside Legato and cannot be "
                "materialized here",
                "key",
            )
        if len(producing) > 1:
            raise ServiceError(
                f"asset {key!r} is produced in several pipelines ({', '.join(producing)}): "
                "say which one to run (pipeline)",
                "pipeline",
            )
        return producing[0]

    # -- the run ----------------------------------------------------------------------------

    def _record(
        self,
        key: str,
        name: str,
        partition: str | None,
        params: Mapping[str, Any] | None,
        from_text: bool,
    ) -> RunRecord:
        pipe = self.ws.pipeline(name)
        parts = pipe.automation.partitions
        if parts is None and partition is not None:
            raise ServiceError(
                f"asset {key!r} has no partitions (pipeline {pipe.name!r} has none): "
                "materialize it without a partition",
                "partition",
            )
        if parts is not None and partition is None:
            kind = parts.describe().get("kind", "partitioned")
            raise ServiceError(
                f"asset {key!r} is partitioned ({kind}, as pipeline {pipe.name!r}): say which "
                "partition to materialize",
                "partition",
            )

        def rows_of(pipe: Pipeline, run: RunRecord) -> tuple[list[TaskRunRecord], list[str]]:
            return _Planner(self.ws, pipe, run, key).rows()

        return record_run(
            self.ws,
            name,
            params,
            partition=partition,
            from_text=from_text,
            origin=f"materialize:{key}",
            rows_of=rows_of,
        )[0]


def _targets(pipe: Pipeline, key: str) -> list[str]:
    """The tasks of ``pipe`` producing the asset ``key``."""
    return [
        n for n, node in pipe.graph.nodes.items() if any(a.key == key for a in node.task.produces)
    ]


class _Planner:
    """The task rows of the new run ``run`` of ``pipe`` materializing ``key``, and the notes
    saying why each upstream task runs or is reused."""

    def __init__(self, ws: Workspace, pipe: Pipeline, run: RunRecord, key: str) -> None:
        self.ws = ws
        self.pipe = pipe
        self.run = run
        self.key = key
        self.now = ws.clock()
        self.why: dict[str, str] = {}  # a task upstream that runs again: why
        self._graph: AssetGraph | None = None
        self._no_alike = (
            "no finished run of this pipeline has the same partition, params and code version"
        )

    def rows(self) -> tuple[list[TaskRunRecord], list[str]]:
        from legato.engine.narrowing import narrow, narrowed_rows

        targets = _targets(self.pipe, self.key)
        if not targets:  # the code changed since the producer was chosen
            raise ServiceError(
                f"pipeline {self.pipe.name!r} no longer produces asset {self.key!r}", "key"
            )
        old = self._newest_alike()
        old_rows: dict[str, list[TaskRunRecord]] = {}
        if old is not None:
            for r in self.ws.store.runs.get_task_runs(old.id):
                old_rows.setdefault(r.node, []).append(r)
        chosen = narrow(
            self.pipe.graph, targets, lambda node: self._usable(node, old, old_rows.get(node))
        )
        rows = narrowed_rows(
            self.pipe.graph,
            chosen,
            old_rows,
            None if old is None else old.id,
            self.run.id,
            f"not needed to materialize {self.key}",
        )
        notes = [f"materialize {self.key}: runs {', '.join(chosen.run)}"]
        if chosen.reuse and old is not None:
            # Named by the run that made each result (a reused row may be a copy already).
            sources: dict[str, list[str]] = {}
            for n in chosen.reuse:
                sources.setdefault(old_rows[n][0].reused_from or old.id, []).append(n)
            notes += [f"reuses {', '.join(ns)} from run {src}" for src, ns in sources.items()]
        upstream = [n for n in chosen.run if n not in targets]
        if old is None and upstream:
            notes.append(f"reuses nothing: {self._no_alike}")
        elif old is not None:
            notes += [f"{n} runs: {self.why.get(n, 'a task upstream runs')}" for n in upstream]
        return rows, notes

    def _newest_alike(self) -> RunRecord | None:
        """The newest finished run of the pipeline with the new run's partition, params and
        code version: the one whose results may be reused."""
        run, pipe = self.run, self.pipe
        if any(p.secret and run.params.get(n) is not None for n, p in pipe.params.items()):
            # Secret values are stored masked: whether they match is not known.
            self._no_alike = "it is given a secret param, whose older values are not compared"
            return None
        before: str | None = None
        for _ in range(LOOK_BACK // _PAGE):
            page = self.ws.store.browse.list_runs(
                pipeline=pipe.name,
                state=_FINISHED,
                partition=run.partition,
                limit=_PAGE,
                before_id=before,
            )
            for r in page:
                if (r.partition, r.params, r.code_version) == (
                    run.partition, run.params, run.code_version,
                ):  # fmt: skip
                    return r
            if len(page) < _PAGE:
                return None
            before = page[-1].id
        return None

    def _usable(
        self, node: str, old: RunRecord | None, rows: Sequence[TaskRunRecord] | None
    ) -> bool:
        """Whether the task ``node`` may reuse its ``rows`` of the run ``old`` (and if not,
        why it runs, in ``self.why``)."""
        from legato.engine import plan
        from legato.results.result_store import ResultStore

        if old is None:
            return False
        if not rows or any(r.state != TaskState.SUCCEEDED for r in rows):
            self.why[node] = f"it did not succeed in run {old.id}"
            return False
        results = ResultStore(self.ws.config.results_url)
        if not all(results.exists(plan.ref_of(r)) for r in rows):
            self.why[node] = f"its result of run {rows[0].reused_from or old.id} is gone"
            return False
        made_by = rows[0].reused_from or old.id
        for asset in self.pipe.graph.nodes[node].task.produces:
            stale = self._stale(asset.key, made_by, node)
            if stale is not None:
                self.why[node] = stale
                return False
        return True

    def _stale(self, key: str, run_id: str, node: str) -> str | None:
        """Why the asset ``key`` as the run ``run_id`` made it is stale; None when fresh
        (or it has no freshness policy)."""
        lag = self._freshness(key)
        if lag is None:
            return None
        made = [
            m.at
            for m in self.ws.store.assets.of_run(run_id)
            if m.asset == key and m.task_key.split("[", 1)[0] == node
        ]
        if not made:
            return f"asset {key} has no materialization in run {run_id} to reuse"
        if self.run.partition is not None:
            # A partition's policy is about lateness after its window closed, as the
            # catalog judges it (asset_freshness): once made, a partition does not age.
            return None
        age = self.now - max(made)
        if age <= lag:
            return None
        from legato.observability.alert_rules import format_duration

        ago = format_duration(timedelta(seconds=int(age.total_seconds())))
        return f"asset {key} is stale: made {ago} ago, fresh within {format_duration(lag)}"

    def _freshness(self, key: str) -> timedelta | None:
        # The policy as the catalog shows it: the fullest declaration of the asset.
        if self._graph is None:
            from legato.definitions.asset_graph import asset_graph

            self._graph = asset_graph(self.ws.project.pipelines.values())
        found = self._graph.nodes.get(key)
        return None if found is None else found.asset.freshness

