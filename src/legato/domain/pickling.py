"""Records that cross processes many times a second, pickled by position.

A slotted dataclass pickles through its generated ``__getstate__``, which asks
``dataclasses.fields`` again for every object: a batch of mapped elements is hundreds of
attempts and outcomes in one message. ``by_position`` pickles a record as its class and
its fields' values in order, read by one ``attrgetter``.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, TypeVar

T = TypeVar("T")


def by_position(cls: type[T]) -> type[T]:
    """Make instances of the dataclass ``cls`` pickle as ``cls(*values)``."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if not names:
        return cls
    get = operator.attrgetter(*names)
    single = len(names) == 1

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        values = get(self)
        return cls, ((values,) if single else values)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls
