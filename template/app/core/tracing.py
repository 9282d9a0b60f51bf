"""OpenTelemetry traces, sent over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

FastAPI traces every request itself (a server span, with spans for dependencies,
the endpoint and serialization) as soon as a tracer provider is configured;
this module configures one and adds database statements and outgoing httpx
calls as child spans. The exporter reads the standard OTEL_* variables
(OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...).

Nothing here is imported unless tracing is configured: without an endpoint,
start-up time and memory stay as they were.
"""

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

# The provider setup_tracing made in this process, if it made one: events carry
# the trace of the request that wrote them, and jobs continue it.
_provider: "TracerProvider | None" = None


def setup_tracing(
    service_name: str,
    endpoint: str,
    engines: list[AsyncEngine],
    exporter: "SpanExporter | None" = None,
) -> "TracerProvider":
    """A tracer provider exporting to `exporter` (default: OTLP over HTTP to
    `endpoint`), with the engines and httpx instrumented. Installed as the
    global provider unless an exporter is given (tests pass their own)."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
    )

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        # The signal's path is appended to the base endpoint, as the OTLP spec
        # says; passed explicitly because the setting may come from .env.
        otlp = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
        # Batched: exporting never runs on a request's time.
        processor: SimpleSpanProcessor | BatchSpanProcessor = BatchSpanProcessor(otlp)
    else:
        processor = SimpleSpanProcessor(exporter)  # tests read spans at once
    # OTEL_SERVICE_NAME, when set, wins over the app's name (Resource merges it).
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(processor)
    if exporter is None:
        trace.set_tracer_provider(provider)  # for spans the app's own code makes
    # skip_dep_check: the instrumentation declares "sqlalchemy < 2.1" while it
    # works through the event API that 2.1 keeps (tests/integration/test_tracing.py).
    SQLAlchemyInstrumentor().instrument(
        engines=[engine.sync_engine for engine in engines],
        tracer_provider=provider,
        skip_dep_check=True,
    )
    HTTPXClientInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    global _provider  # one per process, like the global provider
    _provider = provider
    return provider


def stop_tracing() -> None:
    """Forget this process's provider (tests: the next app makes its own)."""
    global _provider
    _provider = None


def current_traceparent() -> str | None:
    """The W3C traceparent of the span running now (a request's), or None when
    nothing is traced: what an event carries to the jobs it causes."""
    if _provider is None:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continued(name: str, traceparent: str | None) -> Iterator[None]:
    """A span for a job's work, in the trace of the request that caused it
    (its parent: `traceparent`); nothing when nothing is traced."""
    if _provider is None:
        yield
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    parent = extract({"traceparent": traceparent}) if traceparent else None
    tracer = _provider.get_tracer("app.jobs")
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER):
        yield


def tag_request(request_id: str) -> None:
    """Put the request id on the request's span: a log line and its trace meet."""
    from opentelemetry import trace

    trace.get_current_span().set_attribute("app.request_id", request_id)
