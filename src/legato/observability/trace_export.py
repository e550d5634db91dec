"""The OpenTelemetry SDK side of ``tracing``: imported only when tracing is on.

Each process exports through its own SDK provider, made on first use from its own
environment (``OTEL_EXPORTER_OTLP_*`` give the endpoint, headers, timeout; ``OTEL_SERVICE_NAME``
the service). A forked child (a worker of the local executor) does not use the copy of its
parent's: it shuts the copy down right after the fork, before the zygote forks anything else,
and makes its own when a task first traces there, so every span says which process made it
(``process.pid``). The global provider that task code reaches through ``opentelemetry.trace``
hands out tracers that follow this, so a tracer a module made at import time, in the driver,
still exports from a worker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from legato.observability.tracing import enabled, service_name

#: The instrumentation scope of Legato's own spans.
SCOPE = "legato"
#: How long a worker waits for its spans to be exported before it reports an attempt.
FLUSH_SECONDS = 3.0
# Outcomes of an attempt that say the task, or the process running it, went wrong.
_ERROR_OUTCOMES = frozenset({"failed", "timeout", "crashed"})
_propagator = TraceContextTextMapPropagator()

_lock = threading.Lock()
_pid = 0  # the process that made _provider (0: none yet)
_provider: TracerProvider | None = None
_flusher: threading.Thread | None = None  # the latest flush (see flush())


def process_provider() -> TracerProvider | None:
    """This process's provider, made on first use; None when the variables here turn tracing
    off. The first one made also becomes the global provider (unless the project set one)."""
    global _pid, _provider
    if _pid == os.getpid():
        return _provider
    with _lock:
        if _pid != os.getpid():
            _provider = _new_provider() if enabled() else None
            _pid = os.getpid()
            if _provider is not None:
                _install_global()
    return _provider


def _new_provider() -> TracerProvider:
    resource = Resource.create({"service.name": service_name(), "process.pid": os.getpid()})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # Registered after the SDK's own fork hooks (which restart the export thread in the
    # child), so this one runs after them and stops that thread at once.
    os.register_at_fork(after_in_child=_forget_inherited)
    return provider


def _forget_inherited() -> None:
    global _lock, _pid, _provider
    _lock = threading.Lock()  # another thread of the parent may have held it
    if _provider is not None and _pid != os.getpid():
        inherited, _provider, _pid = _provider, None, 0
        # Its queue was emptied by the SDK in the child: nothing is sent twice.
        inherited.shutdown()


def flush(timeout: float = FLUSH_SECONDS) -> bool:
    """Export this process's finished spans now; False if that took over ``timeout`` s.

    The SDK's own flush ignores its timeout and, with the receiver down, retries for the
    exporter's (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s): run in a thread, it lets the attempt
    be reported after ``timeout`` at most while the export goes on. While such an export
    goes on, later flushes do not wait for it: a receiver that is down costs one wait per
    exporter timeout, not one per attempt.
    """
    global _flusher
    provider = _provider if _pid == os.getpid() else None
    if provider is None:
        return True
    if _flusher is not None and _flusher.is_alive():
        return False
    _flusher = threading.Thread(target=provider.force_flush, name="legato-span-flush", daemon=True)
    _flusher.start()
    _flusher.join(timeout)
    return not _flusher.is_alive()


def _install_global() -> None:
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(PerProcessProvider())
    # else the project set its own provider: its spans go there, nested all the same


class PerProcessProvider(trace.TracerProvider):
    """The global provider Legato installs: its tracers use the current process's provider."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _ProcessTracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )


class _ProcessTracer(trace.Tracer):
    def __init__(self, *scope: Any) -> None:
        self._scope = scope
        self._pid = 0
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        if self._pid != os.getpid():
            provider = process_provider()
            self._tracer = (
                trace.NoOpTracer() if provider is None else provider.get_tracer(*self._scope)
            )
            self._pid = os.getpid()
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().start_as_current_span(*args, **kwargs)


@contextmanager
def attached(traceparent: str, *, export: bool) -> Iterator[None]:
    """The context of ``traceparent`` attached while the block runs (``export``: with this
    process's provider set up to export what the block's spans)."""
    if export:
        process_provider()
    token = context.attach(_propagator.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)


# -- the driver's spans --------------------------------------------------------------------


def _ns(at: datetime) -> int:
    return round(at.timestamp() * 1_000_000) * 1000


def _set_error(span: trace.Span, failed: bool, error: str | None) -> None:
    if failed:
        span.set_status(Status(StatusCode.ERROR, error))


class RunSpan:
    """The span of one run in the process driving it, with its attempts' spans.

    Times come from the driver's clock, as the run's and attempts' rows do.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        run_id: str,
        pipeline: str,
        partition: str | None,
        at: datetime,
        *,
        resumed: bool,
    ) -> None:
        self._tracer = tracer
        self._base: dict[str, str] = {"legato.run_id": run_id, "legato.pipeline": pipeline}
        if partition is not None:
            self._base["legato.partition"] = partition
        self._span = tracer.start_span(
            f"run {pipeline}",
            attributes={**self._base, "legato.resumed": resumed},
            start_time=_ns(at),
        )
        self._context = trace.set_span_in_context(self._span)
        self._attempts: dict[str, trace.Span] = {}  # task key -> its running attempt's span

    def start_attempt(self, task_key: str, attempt: int, at: datetime) -> str:
        """Open the span of an attempt; returns its W3C ``traceparent``."""
        span = self._tracer.start_span(
            f"task {task_key}",
            context=self._context,
            attributes={**self._base, "legato.task": task_key, "legato.attempt": attempt},
            start_time=_ns(at),
        )
        self._attempts[task_key] = span
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, trace.set_span_in_context(span))
        return carrier["traceparent"]

    def end_attempt(self, task_key: str, outcome: str, error: str | None, at: datetime) -> None:
        """Close an attempt's span with its outcome (error status when it went wrong)."""
        span = self._attempts.pop(task_key, None)
        if span is None:
            return
        span.set_attribute("legato.outcome", outcome)
        _set_error(span, outcome in _ERROR_OUTCOMES, error)
        span.end(end_time=_ns(at))

    def end(self, state: str, error: str | None, at: datetime) -> None:
        """Close the run's span with its state (and any attempt span still open)."""
        for key in list(self._attempts):
            self.end_attempt(key, "interrupted", None, at)
        self._span.set_attribute("legato.state", state)
        _set_error(self._span, state == "failed", error)
        self._span.end(end_time=_ns(at))


class Tracing:
    """Opens run spans in the process driving runs (``tracing.from_env()`` makes it)."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._tracer = trace.NoOpTracer() if provider is None else provider.get_tracer(SCOPE)

    def run(
        self, run_id: str, pipeline: str, partition: str | None, at: datetime, *,
        resumed: bool = False,
    ) -> RunSpan:
        """Open the span of a run starting (or, ``resumed``, carried on) in this process."""
        return RunSpan(self._tracer, run_id, pipeline, partition, at, resumed=resumed)
