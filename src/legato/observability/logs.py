"""The daemons' own log lines, as text or as one JSON object per line (``--log-format json``).

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus
``run_id``, ``pipeline``, ``task`` and ``attempt`` when the line concerns a run, and ``error``
(the traceback) when it carries an exception. Those fields come from two places: what the
code driving a run has bound for the current context (``log_context``, a context variable,
so a line logged anywhere below the driver's step carries its run), and a record's own
``extra`` (``log.info(..., extra={"run_id": ...})``), which wins.

This is about the daemons' lines; what a task prints goes to its attempt's log file.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

__all__ = ["FIELDS", "JsonFormatter", "LogFormat", "configure", "log_context"]

LogFormat = Literal["text", "json"]

#: The fields a line may carry about a run, in the order they are written.
FIELDS = ("run_id", "pipeline", "task", "attempt")

#: The name of the handler ``configure`` installs on the root logger.
_HANDLER = "legato"

_bound: ContextVar[dict[str, Any] | None] = ContextVar("legato_log_fields", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` (some of ``FIELDS``) to every line logged inside, in this thread or task.

    Nested contexts add to the outer one's fields; None leaves a field out.
    """
    outer = _bound.get()
    inner = {**(outer or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _bound.set(inner)
    try:
        yield
    finally:
        _bound.reset(token)


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _bound.get()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None and bound is not None:
                value = bound.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(
    fmt: LogFormat = "text", *, level: int = logging.WARNING, stream: TextIO | None = None
) -> None:
    """Send the process's log lines to ``stream`` (stderr by default) in ``fmt``.

    In JSON, Legato's own loggers write from INFO (what a daemon says it does: runs queued,
    started, finished) and other libraries from ``level``; in text, everything from ``level``.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        logging.getLogger("legato").setLevel(min(level, logging.INFO))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER:  # called again: this one replaces it, others stay
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
