"""The @pipeline decorator: a function whose body wires task calls into a static graph."""

from __future__ import annotations

import inspect
import reprlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import TYPE_CHECKING, Any, overload

from legato.definitions.automation_spec import build_automation
from legato.definitions.errors import DefinitionError, ParamError
from legato.definitions.graph import (
    Arg,
    Each,
    FromNode,
    FromParam,
    Graph,
    Literal,
    Node,
    topological,
)
from legato.definitions.secret_param import is_secret
from legato.definitions.task import Task
from legato.observability.alert_rules import AlertRule, for_pipeline

if TYPE_CHECKING:
    from legato.definitions.partitioning import PartitionSet
    from legato.definitions.scheduling import Schedule
    from legato.definitions.triggering import Trigger

_builders: list[_Builder] = []


def current_builder() -> _Builder | None:
    """The pipeline whose body is being evaluated right now, if any."""
    return _builders[-1] if _builders else None


class unmapped:
    """Pass a value whole to every element of a ``.map()`` call instead of iterating it."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Lazy:
    """Something that only has a value at run time; using it as a value now is an error."""

    _what = "a lazy value"

    def _misuse(self, *_: Any, **__: Any) -> Any:
        file, line = _caller()
        raise DefinitionError(
            f"{self._what} has no value while the pipeline is being defined; "
            "pass it to another task instead (use .map() to iterate over it)",
            file,
            line,
        )

    __iter__ = __bool__ = __len__ = __getitem__ = __add__ = __radd__ = _misuse
    __sub__ = __mul__ = __truediv__ = __eq__ = __lt__ = __gt__ = __contains__ = _misuse
    __hash__ = object.__hash__


class Handle(_Lazy):
    """The future result of a task call. ``a >> b`` makes b wait for a without passing data."""

    def __init__(self, builder: _Builder, node_id: str, mapped: bool) -> None:
        self._builder = builder
        self.node_id = node_id
        self.mapped = mapped
        self._what = f"the result of task {node_id!r}"

    def __rshift__(self, other: Handle | Iterable[Handle]) -> Any:
        for h in [other] if isinstance(other, Handle) else list(other):
            self._builder.add_order(self, h)
        return other

    def __lshift__(self, other: Handle | Iterable[Handle]) -> Any:
        for h in [other] if isinstance(other, Handle) else list(other):
            self._builder.add_order(h, self)
        return other

    def __rrshift__(self, other: Iterable[Handle]) -> Handle:
        for h in list(other):
            self._builder.add_order(h, self)
        return self

    def __repr__(self) -> str:
        return f"<handle {self.node_id}>"


class ParamHandle(_Lazy):
    """A pipeline param inside the pipeline body."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._what = f"param {name!r}"

    def __repr__(self) -> str:
        return f"<param {self.name}>"


def _caller() -> tuple[str, int]:
    # The first frame outside the legato package is the user's line.
    frame = sys._getframe(1)
    pkg = __file__.rsplit("/definitions/", 1)[0]
    while frame is not None and frame.f_code.co_filename.startswith(pkg):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ("<unknown>", 0)
    return (frame.f_code.co_filename, frame.f_lineno)


class _Builder:
    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.nodes: dict[str, Node] = {}
        self.order_edges: dict[str, list[str]] = {}
        self.edge_lines: dict[tuple[str, str], tuple[str, int]] = {}
        self.counts: dict[str, int] = {}

    def _arg(
        self, value: Any, file: str, line: int, task: Task
    ) -> Literal | FromNode | FromParam:
        if isinstance(value, Handle):
            if value._builder is not self:
                raise DefinitionError(
                    f"task {task.name!r} was given a result from another pipeline", file, line
                )
            return FromNode(value.node_id)
        if isinstance(value, ParamHandle):
            return FromParam(value.name)
        if isinstance(value, list | tuple | dict | set) and _contains_lazy(value):
            raise DefinitionError(
                f"task {task.name!r}: task results inside a {type(value).__name__} cannot be "
                "passed; pass each result as its own argument",
                file,
                line,
            )
        return Literal(value)

    def add_call(
        self, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], mapped: bool
    ) -> Handle:
        file, line = _caller()
        resources = _resources_wanted(task, args, kwargs, file, line)
        n = self.counts.get(task.name, 0) + 1
        self.counts[task.name] = n
        node_id = task.name if n == 1 else f"{task.name}_{n}"
        while node_id in self.nodes:
            node_id += "_"

        def convert(value: Any) -> Arg:
            if not mapped:
                if isinstance(value, unmapped):
                    value = value.value
                return self._arg(value, file, line, task)
            if isinstance(value, unmapped):
                return self._arg(value.value, file, line, task)
            inner = self._arg(value, file, line, task)
            if isinstance(inner, Literal) and (
                isinstance(inner.value, str | bytes) or not isinstance(inner.value, Iterable)
            ):
                return inner  # a scalar is passed whole, as with unmapped()
            return Each(inner)

        cargs = tuple(convert(a) for a in args)
        ckwargs = tuple((k, convert(v)) for k, v in kwargs.items())
        if mapped and not any(isinstance(a, Each) for a in (*cargs, *(v for _, v in ckwargs))):
            raise DefinitionError(
                f"{task.name}.map() needs at least one list or task result to iterate over",
                file,
                line,
            )
        upstream: dict[str, None] = {}  # in order, once each: a join may take 10,000 inputs
        for a in (*cargs, *(v for _, v in ckwargs)):
            src = a.source if isinstance(a, Each) else a
            if isinstance(src, FromNode):
                upstream[src.node] = None
        self.nodes[node_id] = Node(
            id=node_id,
            task=task,
            args=cargs,
            kwargs=ckwargs,
            mapped=mapped,
            upstream=tuple(upstream),
            file=file,
            line=line,
            resources=resources,
        )
        for up in upstream:
            self.edge_lines[(up, node_id)] = (file, line)
        return Handle(self, node_id, mapped)

    def add_order(self, before: Handle, after: Handle) -> None:
        file, line = _caller()
        for h in (before, after):
            if not isinstance(h, Handle) or h._builder is not self:
                raise DefinitionError("'>>' links task results of the same pipeline", file, line)
        node = self.nodes[after.node_id]
        if before.node_id == after.node_id:
            raise DefinitionError(f"dependency cycle: {before.node_id} -> itself", file, line)
        if before.node_id not in node.upstream:
            self.nodes[after.node_id] = Node(
                **{**node.__dict__, "upstream": (*node.upstream, before.node_id)}
            )
            self.edge_lines[(before.node_id, after.node_id)] = (file, line)

    def graph(self) -> Graph:
        return topological(self.nodes, self.edge_lines)


def _resources_wanted(
    task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], file: str, line: int
) -> tuple[tuple[str, str], ...]:
    """(parameter, resource) for each parameter of ``task`` a resource fills: those annotated
    ``legato.resource(...)``, and the required ones this call leaves unset (named like the
    resource they want: whether it is declared is known only to the loader)."""
    sig = task.signature
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise DefinitionError(f"task {task.name!r} called wrongly: {exc}", file, line) from None
    by_name: list[tuple[str, str]] = []
    for p in sig.parameters.values():
        if p.name in bound.arguments or p.default is not p.empty:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.POSITIONAL_ONLY:  # the worker passes resources by name
            raise DefinitionError(
                f"task {task.name!r} called wrongly: missing argument {p.name!r}", file, line
            )
        by_name.append((p.name, p.name))
    return (*task.resource_params.items(), *by_name)


def _contains_lazy(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(isinstance(v, _Lazy) for v in items)


@dataclass(frozen=True)
class Param:
    """A pipeline param: its name, type hint and default."""

    name: str
    annotation: Any
    default: Any
    required: bool

    @property
    def secret(self) -> bool:
        """Whether the param is typed ``Secret``: its value is sealed, never shown."""
        return is_secret(self.annotation)

    @property
    def type_name(self) -> str:
        ann = self.annotation
        if ann is inspect.Parameter.empty:
            return "any"
        return ann if isinstance(ann, str) else getattr(ann, "__name__", None) or repr(ann)


class Pipeline:
    """A named, static graph of task calls, with params and metadata."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        description: str,
        tags: frozenset[str],
        automation: Mapping[str, Any] | None = None,
        alerts: Iterable[AlertRule] = (),
    ) -> None:
        self.fn = fn
        self.name = name
        self.description = description
        self.tags = tags
        #: Alert rules declared on the pipeline (``legato.alert``), each covering it only.
        self.alerts = tuple(for_pipeline(rule, name) for rule in alerts)
        if len({r.name for r in self.alerts}) != len(self.alerts):
            raise DefinitionError(
                f"pipeline {name!r}: two alerts share a name; give each its own name="
            )
        code = fn.__code__
        self.file, self.line = code.co_filename, code.co_firstlineno
        self.module = fn.__module__
        self.automation = build_automation(name, self.file, self.line, **(automation or {}))
        self.params = self._read_params()
        self.graph = self._build()
        self.code_version = ""  # set by the loader from the project's source files

    def _read_params(self) -> dict[str, Param]:
        out: dict[str, Param] = {}
        hints: dict[str, Any] = {}
        for name, hint in inspect.get_annotations(self.fn).items():
            if name == "return" or not isinstance(hint, str):
                hints[name] = hint
                continue
            try:
                # The hint is the pipeline author's own code, evaluated as Python would.
                hints[name] = eval(hint, self.fn.__globals__)
            except Exception as exc:
                raise DefinitionError(
                    f"pipeline {self.name!r}: the type hint {hint!r} of param {name!r} cannot "
                    f"be resolved ({exc}); import what it names at module level",
                    self.file,
                    self.line,
                ) from None
        for p in inspect.signature(self.fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise DefinitionError(
                    f"pipeline {self.name!r}: params must be named (no *args/**kwargs)",
                    self.file,
                    self.line,
                )
            out[p.name] = Param(
                name=p.name,
                annotation=hints.get(p.name, inspect.Parameter.empty),
                default=None if p.default is p.empty else p.default,
                required=p.default is p.empty,
            )
        return out

    def _build(self) -> Graph:
        builder = _Builder(self.name)
        _builders.append(builder)
        try:
            self.fn(**{name: ParamHandle(name) for name in self.params})
        finally:
            _builders.pop()
        if not builder.nodes:
            raise DefinitionError(f"pipeline {self.name!r} calls no tasks", self.file, self.line)
        return builder.graph()

    def validate_params(
        self, given: Mapping[str, Any], *, from_text: bool = False
    ) -> dict[str, Any]:
        """Check params against the pipeline's signature and type hints; fill in defaults.

        With ``from_text`` the values are command-line strings: each is validated as given
        and, if that fails, as JSON (so ``--param limit=10`` or ``--param ids=[1,2]`` work).
        """
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ParamError(
                f"pipeline {self.name!r} has no param {brief(unknown[0])} (its params: {known})",
                unknown[0],
            )
        out: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name not in given:
                if spec.required:
                    raise ParamError(f"pipeline {self.name!r} needs param {name!r}", name)
                out[name] = spec.default
                continue
            out[name] = _validate(self.name, spec, given[name], from_text)
        return out

    def params_to_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validated params as JSON values (dates as ISO text...), for storing with a run."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            spec = self.params.get(name)
            if spec is None or spec.annotation is inspect.Parameter.empty or _plain_json(value):
                out[name] = value
                continue
            from pydantic import TypeAdapter
            from pydantic_core import PydanticSerializationError

            try:
                out[name] = TypeAdapter(spec.annotation).dump_python(value, mode="json")
            except PydanticSerializationError as exc:
                raise ParamError(
                    f"pipeline {self.name!r}: param {name!r} cannot be stored as JSON: {exc}"
                ) from None
        return out

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able description of the graph, kept with each code version."""
        return {
            "name": self.name,
            "description": self.description,
            "file": self.file,
            "line": self.line,
            "params": [
                {
                    "name": p.name,
                    "type": p.type_name,
                    "required": p.required,
                    "default": _jsonable(p.default),
                }
                for p in self.params.values()
            ],
            "automation": self.automation.describe(),
            "nodes": [
                {
                    "id": n.id,
                    "task": n.task.name,
                    "mapped": n.mapped,
                    "upstream": list(n.upstream),
                    "line": n.line,
                    "retries": n.task.retry.retries,
                    "timeout": n.task.timeout,
                    "tags": sorted(n.task.tags),
                    "pool": n.task.pool,
                    "description": n.task.description.split("\n", 1)[0],
                    # Each check is drawn as a step after its task, even before it has run.
                    **({"checks": [{"name": c.name, "severity": c.severity}
                                   for c in n.task.checks]} if n.task.checks else {}),
                }
                for n in self.graph.nodes.values()
            ],
        }

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def _plain_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, date | time):
        # The form a date or time input takes and the param's validation accepts back.
        return value.isoformat()
    return repr(value)


def _validate(pipeline: str, spec: Param, value: Any, from_text: bool) -> Any:
    if spec.annotation is inspect.Parameter.empty:
        return value
    from pydantic import TypeAdapter, ValidationError  # only runs get here: keeps import light

    adapter: TypeAdapter[Any] = TypeAdapter(spec.annotation)
    try:
        return adapter.validate_python(value)
    except ValidationError as first:
        if from_text and isinstance(value, str):
            import json

            try:
                return adapter.validate_python(json.loads(value))
            except (ValueError, ValidationError):
                pass
        reason = first.errors()[0]["msg"] if first.errors() else str(first)
        shown = "a value" if spec.secret else brief(value)  # a secret is never repeated
        raise ParamError(
            f"pipeline {pipeline!r}: param {spec.name!r} expects {spec.type_name}, "
            f"got {shown} ({reason})",
            spec.name,
        ) from None


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 80
_BRIEF.maxlong = 40


def brief(value: Any) -> str:
    """``repr(value)``, cut short: error messages show what was given, not all of it."""
    return _BRIEF.repr(value)


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] = (),
    partitions: PartitionSet | None = None,
    schedule: str | Schedule | Sequence[str | Schedule] | None = None,
    triggers: Iterable[Trigger] = (),
    max_active_runs: int | None = None,
    priority: int = 0,
    tz: str | None = None,
    alerts: Iterable[AlertRule] = (),
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] = (),
    partitions: PartitionSet | None = None,
    schedule: str | Schedule | Sequence[str | Schedule] | None = None,
    triggers: Iterable[Trigger] = (),
    max_active_runs: int | None = None,
    priority: int = 0,
    tz: str | None = None,
    alerts: Iterable[AlertRule] = (),
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Declare a pipeline. Its body runs once, at import, to record the graph of task calls.

    The function's parameters are the pipeline's params, validated from their type hints
    when a run starts; inside the body they are placeholders to pass to tasks.

    Automation: ``partitions`` (``legato.partitions``), ``schedule`` (cron text, "every 15m",
    or ``legato.schedules.cron(...)``; a list for several), ``triggers``
    (``legato.triggers``), ``max_active_runs`` at once, ``priority`` in the run queue (higher
    first), and ``tz``, the time zone of schedules given as text (default: the partitions'
    time zone, else UTC).

    ``alerts``: rules made with ``legato.alert(...)``, each covering this pipeline only.
    """
    automation = {
        "partitions": partitions,
        "schedule": schedule,
        "triggers": tuple(triggers),
        "max_active_runs": max_active_runs,
        "priority": priority,
        "tz": tz,
    }

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(
            f,
            name=name or f.__name__,
            description=description if description is not None else (inspect.getdoc(f) or ""),
            tags=frozenset(tags),
            automation=automation,
            alerts=alerts,
        )

    if fn is not None:
        return wrap(fn)
    return wrap
