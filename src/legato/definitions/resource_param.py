"""Resources asked for by a task: a parameter named like a resource, or one annotated
``Annotated[T, legato.resource("name")]``, or ``ctx.resources.NAME`` in its body.

The graph is built at import, before legato.toml's ``[resources]`` are known: a task call
that leaves a required parameter unset records it as a resource it wants (``Node.resources``),
and the loader checks that a resource of that name is declared.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

__all__ = ["NoResources", "ResourceMarker", "Resources", "annotated_resources", "resource"]


@dataclass(frozen=True, slots=True)
class ResourceMarker:
    """What ``legato.resource(name)`` puts in an ``Annotated`` hint."""

    name: str


def resource(name: str) -> ResourceMarker:
    """Mark a task parameter as the resource ``name`` of legato.toml's ``[resources]``::

        @task
        def load(rows: list[dict], db: Annotated[Engine, legato.resource("shop_db")]) -> None:
            ...

    The parameter is filled with the resource's client when the task runs; a pipeline's call
    does not pass it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"resource() takes a resource's name, got {name!r}")
    return ResourceMarker(name)


def _marker(hint: Any) -> ResourceMarker | None:
    if get_origin(hint) is not Annotated:
        return None
    return next((m for m in get_args(hint)[1:] if isinstance(m, ResourceMarker)), None)


def annotated_resources(fn: Callable[..., Any]) -> dict[str, str]:
    """Parameter name -> resource name, for the parameters of ``fn`` annotated with
    ``resource(...)``. A hint written as text (``from __future__ import annotations``) is
    evaluated in the function's module; one that cannot be is not a resource unless it
    reads like one (then ValueError says why)."""
    found: dict[str, str] = {}
    for param in inspect.signature(fn).parameters.values():
        hint = param.annotation
        if isinstance(hint, str):
            try:
                # The hint is the task author's own code, evaluated as Python would.
                hint = eval(hint, getattr(fn, "__globals__", {}))
            except Exception as exc:
                if "resource(" in param.annotation:
                    raise ValueError(
                        f"the type hint {param.annotation!r} of {param.name!r} cannot be "
                        f"resolved ({exc}); import what it names at module level"
                    ) from None
                continue
        marker = _marker(hint)
        if marker is not None:
            found[param.name] = marker.name
    return found


class Resources(Mapping[str, Any]):
    """``ctx.resources``: the resources a task may use, by name, opened on first access.
    ``ctx.resources.shop_db`` is ``ctx.resources["shop_db"]``."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc.args[0]) if exc.args else name) from None


class NoResources(Resources):
    """The resources of a context made outside a run: none."""

    def __getitem__(self, name: str) -> Any:
        raise KeyError(f"no resource named {name!r} (none are declared here)")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
