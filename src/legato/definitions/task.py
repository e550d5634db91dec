"""The @task decorator: a Python function plus its retry policy, timeout and metadata."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cached_property
from typing import Any, overload

from legato.definitions.assets import Asset, assets_of
from legato.definitions.check_spec import Check
from legato.definitions.context import Context
from legato.definitions.durations import parse_duration
from legato.definitions.errors import DefinitionError
from legato.definitions.resource_param import annotated_resources
from legato.definitions.retry import Condition, RetryPolicy

_CONTEXT_NAMES = ("ctx", "context")


@dataclass(frozen=True, eq=False)
class Task:
    """A unit of work. Called inside a @pipeline body it returns a lazy handle, not a value."""

    fn: Callable[..., Any]
    name: str
    retry: RetryPolicy
    timeout: float | None
    tags: frozenset[str]
    description: str
    context_arg: str | None
    in_process: bool
    file: str
    line: int
    pool: str | None = None  # a named pool (legato.toml [pools]) whose slot each attempt takes
    result_format: str = "auto"  # "auto" | "parquet" | "arrow-ipc" | "pickle"
    produces: tuple[Asset, ...] = ()  # assets its output is (docs/assets.md)
    consumes: tuple[Asset, ...] = ()  # assets it reads besides its inputs
    checks: tuple[Check, ...] = ()  # data-quality checks of its output
    concurrency: int = 100  # an async task's attempts a worker runs at once (executors/aio.py)
    # A worker that ran this many attempts of the task is replaced (executors/recycle.py).
    max_calls_per_worker: int | None = None

    @cached_property
    def is_async(self) -> bool:
        """Whether the task is an ``async def`` function: its attempts are coroutines."""
        return inspect.iscoroutinefunction(self.fn)

    @cached_property
    def signature(self) -> inspect.Signature:
        """What a pipeline's call binds: the function's parameters but the context and those
        annotated as resources (the worker fills them in). Made once: a pipeline body may
        call the task thousands of times."""
        sig = inspect.signature(self.fn)
        skip = set(self.resource_params)
        if self.context_arg is not None:
            skip.add(self.context_arg)
        if not skip:
            return sig
        return sig.replace(parameters=[p for p in sig.parameters.values() if p.name not in skip])

    @cached_property
    def resource_params(self) -> dict[str, str]:
        """Parameter -> resource name, for parameters annotated ``legato.resource(...)``.
        Read on first use (at the first call in a pipeline body), when the names its hints
        use are defined."""
        try:
            found = annotated_resources(self.fn)
        except ValueError as exc:
            raise DefinitionError(f"task {self.name!r}: {exc}", self.file, self.line) from None
        for param in found:
            kind = inspect.signature(self.fn).parameters[param].kind
            if kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL,
                        inspect.Parameter.VAR_KEYWORD):
                raise DefinitionError(
                    f"task {self.name!r}: resource parameter {param!r} must be one that can "
                    "be passed by name",
                    self.file,
                    self.line,
                )
        return found

    def named(self, name: str) -> Task:
        """The same task under another node name, for calling it twice in one pipeline."""
        caller = sys._getframe(1)
        problem = name_problem(name)
        if problem is not None:
            raise DefinitionError(
                f"task {self.name!r}: named({name!r}): {problem}",
                caller.f_code.co_filename,
                caller.f_lineno,
            )
        return replace(self, name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from legato.definitions.pipeline import current_builder

        builder = current_builder()
        if builder is None:
            raise DefinitionError(
                f"task {self.name!r} was called outside a @pipeline body; "
                f"call {self.name}.fn(...) to run the plain function"
            )
        return builder.add_call(self, args, kwargs, mapped=False)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """One task run per element of the iterable arguments, decided at run time.

        Wrap an argument in ``unmapped(...)`` to pass it whole to every element.
        """
        from legato.definitions.pipeline import current_builder

        builder = current_builder()
        if builder is None:
            raise DefinitionError(f"{self.name}.map() was called outside a @pipeline body")
        return builder.add_call(self, args, kwargs, mapped=True)

    def __repr__(self) -> str:
        return f"<task {self.name}>"


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a task, or None.

    A task's name is its attempts' log file name (``DAY/RUN/NAME.N.log`` under the logs folder),
    so it must stay one file name: no path separator, no NUL, not ``.`` or ``..``.
    """
    if not isinstance(name, str) or not name:
        return f"a task's name must be non-empty text, got {name!r}"
    if name in (".", ".."):
        return "a task's name cannot be '.' or '..' (it names the task's log file)"
    for char, what in (("/", "'/'"), ("\\", "'\\'"), ("\x00", "a NUL character")):
        if char in name:
            return f"a task's name cannot contain {what} (it names the task's log file)"
    return None


def _context_arg(fn: Callable[..., Any]) -> str | None:
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        return None
    first = params[0]
    ann = first.annotation
    if ann is Context or ann == "Context" or (isinstance(ann, str) and ann.endswith(".Context")):
        return first.name
    if first.name in _CONTEXT_NAMES:
        return first.name
    return None


def _where(fn: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return ("<unknown>", 0)
    return (code.co_filename, code.co_firstlineno)


def _exceptions(
    value: type[BaseException] | Iterable[type[BaseException]],
) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        value = (value,)
    out = tuple(value)
    for item in out:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"retry_on: {item!r} is not an exception class")
    return out


@overload
def task(fn: Callable[..., Any], /) -> Task: ...
@overload
def task(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: str | float | timedelta = 0,
    retry_backoff: float = 1.0,
    retry_max_delay: str | float | timedelta | None = None,
    retry_jitter: float = 0.0,
    retry_on: type[BaseException] | Iterable[type[BaseException]] = Exception,
    retry_when: Condition | Callable[[], bool] | None = None,
    timeout: str | float | timedelta | None = None,
    tags: Iterable[str] = (),
    description: str | None = None,
    in_process: bool = False,
    pool: str | None = None,
    result_format: str = "auto",
    produces: str | Asset | Iterable[str | Asset] | None = None,
    consumes: str | Asset | Iterable[str | Asset] | None = None,
    checks: Iterable[Check] = (),
    concurrency: int = 100,
    max_calls_per_worker: int | None = None,
) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: str | float | timedelta = 0,
    retry_backoff: float = 1.0,
    retry_max_delay: str | float | timedelta | None = None,
    retry_jitter: float = 0.0,
    retry_on: type[BaseException] | Iterable[type[BaseException]] = Exception,
    retry_when: Condition | Callable[[], bool] | None = None,
    timeout: str | float | timedelta | None = None,
    tags: Iterable[str] = (),
    description: str | None = None,
    in_process: bool = False,
    pool: str | None = None,
    result_format: str = "auto",
    produces: str | Asset | Iterable[str | Asset] | None = None,
    consumes: str | Asset | Iterable[str | Asset] | None = None,
    checks: Iterable[Check] = (),
    concurrency: int = 100,
    max_calls_per_worker: int | None = None,
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Declare a task.

    ``retries``: how many more attempts after the first fails. ``retry_delay`` is the first
    wait, ``retry_backoff`` multiplies it each time (2 for exponential), ``retry_max_delay``
    caps it and ``retry_jitter`` (a fraction) spreads it. ``retry_on`` limits which exceptions
    retry; raise ``FailNow`` to fail at once. ``retry_when`` names a condition that must hold
    before the next attempt starts. ``timeout`` kills an attempt that runs longer.
    ``in_process`` runs the task in a thread of the driver, for light tasks. ``pool`` names a
    pool of legato.toml's ``[pools]``: each attempt holds one of its slots while it runs, across
    every run and pipeline (e.g. ``warehouse = 2`` for a database that takes two loads at once).
    ``result_format`` is how the returned value is stored: "auto" (Parquet for frames it gives
    back exactly, else Arrow IPC or pickle), or "parquet", "arrow-ipc" or "pickle"; a frame
    the asked-for format would change fails the attempt without retry.
    ``produces`` names the asset (or assets) the task's output is, ``consumes`` those it reads
    (keys such as "warehouse.daily_sales", or ``Asset`` objects); ``checks`` are data-quality
    checks of its output (``legato.checks``).
    An ``async def`` task's attempts are coroutines: a worker runs up to ``concurrency`` of
    them at once on its event loop (mapped over many inputs, or a fan of the same task), each
    with its own timeout, retries and log.
    ``max_calls_per_worker`` replaces a worker process once it has run that many attempts of
    this task (1: a fresh process after each), for a task whose library leaks or keeps
    state; ``[executor] max_tasks_per_worker`` does the same for every task.
    """

    def wrap(f: Callable[..., Any]) -> Task:
        if not callable(f):
            raise TypeError("@task decorates a function")
        file, line = _where(f)
        try:
            if retries < 0:
                raise ValueError("retries must be >= 0")
            if retry_backoff < 1:
                raise ValueError("retry_backoff must be >= 1")
            if not 0 <= retry_jitter <= 1:
                raise ValueError("retry_jitter must be between 0 and 1")
            cond = retry_when
            if cond is not None and not isinstance(cond, Condition):
                if not callable(cond):
                    raise ValueError("retry_when must be a Condition or a callable returning bool")
                cond = Condition(check=cond)
            policy = RetryPolicy(
                retries=retries,
                delay=parse_duration(retry_delay, field="retry_delay") or 0.0,
                backoff=retry_backoff,
                max_delay=parse_duration(retry_max_delay, field="retry_max_delay"),
                jitter=retry_jitter,
                retry_on=_exceptions(retry_on),
                condition=cond,
            )
            if pool is not None and (not isinstance(pool, str) or not pool.strip()):
                raise ValueError(f"pool must be a pool name, got {pool!r}")
            if result_format != "auto":
                from legato.domain.refs import RESULT_FORMATS

                if result_format not in RESULT_FORMATS:
                    raise ValueError(
                        f"result_format must be one of {', '.join(map(repr, RESULT_FORMATS))}, "
                        f"got {result_format!r}"
                    )
            problem = name_problem(f.__name__ if name is None else name)
            if problem is not None:
                raise ValueError(problem)
            if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
                raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
            calls = max_calls_per_worker
            if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int)
                                      or calls < 1):
                raise ValueError(
                    f"max_calls_per_worker must be a whole number >= 1, got {calls!r}"
                )
            limit = parse_duration(timeout, field="timeout")
            if limit is not None and limit <= 0:
                raise ValueError("timeout must be positive")
            made = assets_of(produces)
            read = assets_of(consumes)
            both = {a.key for a in made} & {a.key for a in read}
            if both:
                raise ValueError(f"asset {sorted(both)[0]!r} is both produced and consumed")
            checked = tuple(checks)
            for check in checked:
                if not isinstance(check, Check):
                    raise TypeError(f"checks: {check!r} is not a check (see legato.checks)")
        except (ValueError, TypeError) as exc:
            raise DefinitionError(f"task {f.__name__!r}: {exc}", file, line) from None
        doc = inspect.getdoc(f) or ""
        return Task(
            fn=f,
            name=name or f.__name__,
            retry=policy,
            timeout=limit,
            tags=frozenset(tags),
            description=description if description is not None else doc,
            context_arg=_context_arg(f),
            in_process=in_process,
            file=file,
            line=line,
            pool=pool,
            result_format=result_format,
            produces=made,
            consumes=read,
            checks=checked,
            concurrency=concurrency,
            max_calls_per_worker=max_calls_per_worker,
        )

    if fn is not None:
        return wrap(fn)
    return wrap
