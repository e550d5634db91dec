"""What an actor sees: the one place a grant's pipeline scope is applied.

An actor whose grant is scoped (``Actor.scope``: name patterns such as ``finance_*``, or
``tag:T``) sees the project's pipelines its scope covers, with their runs, tasks, logs,
backfills, schedules, triggers and partitions, and nothing else. Lists leave the rest out (in
the store's query, so that a page's limit counts only what the actor may see), and naming one
of the rest, by pipeline name, run id or backfill id, is answered exactly as for one that does
not exist: a refusal would tell that it does.

Every service resolves pipelines, runs and backfills through a :class:`Sight` of its actor.
An unscoped actor (empty scope: the local CLI user, the scheduler, grants without one) passes
each check here at the cost of testing an empty tuple.

Runs and backfills are seen through their pipeline as the project defines it now: those of a
pipeline no longer loaded are seen by unscoped actors only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from legato.services.actor import TAG_PREFIX
from legato.services.service_errors import ServiceError

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.domain.records import RunRecord
    from legato.services.actor import Actor
    from legato.services.workspace import Workspace

T = TypeVar("T")

#: Characters of one scope entry at most.
_MAX_ENTRY = 200


class Sight:
    """What ``actor`` sees of the workspace ``ws``'s pipelines."""

    __slots__ = ("_actor", "_ws")

    def __init__(self, ws: Workspace, actor: Actor) -> None:
        self._ws = ws
        self._actor = actor

    @property
    def whole(self) -> bool:
        """Whether the actor sees everything (its scope is empty)."""
        return not self._actor.scope

    def pipelines(self) -> frozenset[str] | None:
        """The names of the project's pipelines the actor sees; None when it sees every
        pipeline (and every run, whatever its pipeline): the ``pipelines`` filter of the
        store's list queries."""
        if self.whole:
            return None
        sees = self._actor.sees
        return frozenset(
            p.name for p in self._ws.project.pipelines.values() if sees(p.name, p.tags)
        )

    def visible(self) -> list[Pipeline]:
        """The project's pipelines the actor sees, by name."""
        pipes = sorted(self._ws.project.pipelines.values(), key=lambda p: p.name)
        if self.whole:
            return pipes
        return [p for p in pipes if self._actor.sees(p.name, p.tags)]

    def hidden_files(self) -> frozenset[str]:
        """The project files (paths as a code version lists them) of modules that define
        only pipelines the actor does not see: a run's code page leaves them out."""
        if self.whole:
            return frozenset()
        pipes = self._ws.project.pipelines.values()
        seen = {p.module for p in pipes if self._actor.sees(p.name, p.tags)}
        hidden = {p.module for p in pipes} - seen
        out: set[str] = set()
        for module in hidden:
            base = module.replace(".", "/")
            out |= {f"{base}.py", f"{base}/__init__.py"}
        return frozenset(out)

    def covers(self, pipeline: str) -> bool:
        """Whether the actor sees the pipeline called ``pipeline`` (and its runs)."""
        if self.whole:
            return True
        pipe = self._ws.project.pipelines.get(pipeline)
        return pipe is not None and self._actor.sees(pipe.name, pipe.tags)

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``; UnknownPipeline (naming close matches among those
        the actor sees) when there is none or the actor does not see it."""
        if self.whole:
            return self._ws.pipeline(name)
        pipe = self._ws.project.pipelines.get(name)
        if pipe is not None and self._actor.sees(pipe.name, pipe.tags):
            return pipe
        # Modules that failed to load are named to unscoped actors only: they belong to no
        # pipeline whose scope could be checked.
        raise self._ws.unknown_pipeline(name, sorted(self.pipelines() or ()), broken=())

    def check(self, pipeline: str) -> None:
        """Raise UnknownPipeline, as :meth:`pipeline`, unless the actor sees the pipeline
        called ``pipeline`` (nothing to do for an actor that sees everything: the caller
        finds out itself whether there is such a pipeline)."""
        if not self.whole:
            self.pipeline(pipeline)

    def run(self, run: RunRecord, missing: Callable[[], Exception]) -> RunRecord:
        """``run``, or ``missing()`` raised (what its caller answers for a run that does
        not exist) when the actor does not see its pipeline."""
        if not self.covers(run.pipeline):
            raise missing()
        return run

    def keep(self, items: Iterable[T], pipeline_of: Callable[[T], str]) -> list[T]:
        """The ``items`` (of a list without a limit) whose pipeline the actor sees."""
        if self.whole:
            return list(items)
        seen = self.pipelines() or frozenset()
        return [x for x in items if pipeline_of(x) in seen]


def check_scope(scope: Iterable[str]) -> tuple[str, ...]:
    """A grant's scope as given (name patterns and ``tag:T``), each entry checked: none may
    be empty or hold spaces or control characters, and ``tag:`` needs a tag. ServiceError
    (field ``scope``) otherwise."""
    out = tuple(scope)
    for entry in out:
        bad = not entry or any(c.isspace() or not c.isprintable() for c in entry)
        if bad or entry == TAG_PREFIX or len(entry) > _MAX_ENTRY:
            raise ServiceError(
                f"{entry!r} is not a usable scope: a pipeline name pattern such as "
                f"'finance_*' or {TAG_PREFIX}T for the pipelines tagged T, at most "
                f"{_MAX_ENTRY} characters",
                "scope",
            )
    return out


__all__ = ["Sight", "check_scope"]
