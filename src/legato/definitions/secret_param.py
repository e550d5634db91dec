"""Secret params: ``def p(token: Secret)`` takes a value that is never stored or shown.

The value given at launch is sealed into the store's secrets under the name
``@run/RUN_ID/PARAM`` (the name is the seal's associated data: it binds the value to its run
and its param), and the run's params hold ``****`` in its place, which is what every view of
the run shows. The driver hands the task a ``SealedParam`` placeholder; the worker opens it,
and the task gets a ``Secret``: a ``str`` whose ``repr`` does not show it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

__all__ = ["MASKED", "SealedParam", "Secret", "is_secret", "param_secret_name"]

#: What a run's params hold, and show, in place of a secret param's value.
MASKED = "****"


class Secret(str):
    """A secret value: a ``str`` for the task's code, ``Secret('****')`` when repr'ed (in a
    traceback's locals, a log record's arguments, a debugger)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret({MASKED!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "format": "password", "writeOnly": True}


@dataclass(frozen=True, slots=True)
class SealedParam:
    """Stands for the secret param ``name`` of a run until the worker opens it."""

    name: str

    def __repr__(self) -> str:
        return f"<secret param {self.name}>"


def is_secret(annotation: Any) -> bool:
    """Whether a param typed ``annotation`` is secret (``Secret`` or ``Secret | None``)."""
    if annotation is Secret:
        return True
    args = typing.get_args(annotation)
    return bool(args) and Secret in args and all(a in (Secret, type(None)) for a in args)


def param_secret_name(owner: str, param: str) -> str:
    """The store's name of a secret param's sealed value: ``owner`` is ``run/ID`` or
    ``backfill/ID``. People's secret names cannot begin with ``@``."""
    return f"@{owner}/{param}"
