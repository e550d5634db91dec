"""Where a task's result is kept: the reference the driver records and the workers read."""

from __future__ import annotations

from dataclasses import dataclass

from legato.domain.pickling import by_position


@by_position
@dataclass(frozen=True, slots=True)
class ResultRef:
    """Where a task's result is stored and how to read it back.

    ``uri`` is None when nothing was stored (the task returned None). ``note`` says why a
    frame is not in the format its kind usually gets (Parquet would change it).
    """

    uri: str | None
    format: str  # "none" | "pickle" | "parquet-<kind>" | "ipc-<kind>" (pandas, polars, arrow)
    note: str | None = None


#: What a task may ask for with ``@task(result_format=...)``; "auto" lets the result store
#: choose a format that gives the value back exactly.
RESULT_FORMATS = ("auto", "parquet", "arrow-ipc", "pickle")
