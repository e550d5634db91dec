"""OpenTelemetry traces of runs and attempts, exported over OTLP/HTTP: when they are on.

Tracing is on only when the standard variables ask for it: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set, and neither ``OTEL_SDK_DISABLED=true`` nor
``OTEL_TRACES_EXPORTER=none``. Off, nothing imports OpenTelemetry and the driver holds no
span objects: ``from_env()`` answers None and the driver skips every tracing step. On, the
work is done by ``trace_export`` (the SDK side, imported here only then).

The process driving a run opens a span per run (``run <pipeline>``) and a child span per
attempt (``task <key>``). An attempt's span travels to wherever the attempt runs as a W3C
``traceparent`` string on its spec; there ``attempt_context`` makes it the current span, so
the spans a task opens with ``opentelemetry.trace.get_tracer(...)`` nest under its attempt,
and ``flush`` exports them before the attempt's outcome is reported.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.observability.trace_export import Tracing

log = logging.getLogger("legato.tracing")

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
DEFAULT_SERVICE_NAME = "legato"
MISSING_SDK = (
    "tracing is asked for (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
    "is set) but the OpenTelemetry SDK is not installed: pip install 'legato[tracing]'. "
    "Runs go on without traces."
)
_warned = False


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OpenTelemetry variables in ``environ`` (default: os.environ) turn tracing on."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get(TRACES_ENDPOINT, "").strip() or env.get(ENDPOINT, "").strip())


def service_name(environ: Mapping[str, str] | None = None) -> str:
    """``OTEL_SERVICE_NAME``, else "legato"."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME


def from_env() -> Tracing | None:
    """What opens run spans in this process when the OTEL variables turn tracing on, else
    None without importing OpenTelemetry. Also None, after one warning, when tracing is on
    but the SDK is not installed."""
    global _warned
    if not enabled():
        return None
    try:
        from legato.observability import trace_export
    except ImportError:
        if not _warned:
            log.warning(MISSING_SDK)
            _warned = True
        return None
    return trace_export.Tracing(trace_export.process_provider())


@contextmanager
def attempt_context(traceparent: str) -> Iterator[None]:
    """Make the attempt span named by ``traceparent`` the current span while a task runs.

    The context is attached even when this process exports nothing, so that a task passing
    it on (an HTTP call with its own instrumentation) still carries the trace.
    """
    try:
        from legato.observability import trace_export
    except ImportError:  # the driver traces, this worker has no OpenTelemetry
        yield
        return
    with trace_export.attached(traceparent, export=enabled()):
        yield


def flush() -> None:
    """Export this process's finished spans now, if it made any: a worker does it before it
    reports an attempt (it may not outlive it), the ``legato`` command before it leaves."""
    made = sys.modules.get("legato.observability.trace_export")
    if made is not None:
        made.flush()
