"""OpenTelemetry: a request is a server span with database spans beneath it,
tagged with the request id; without an endpoint the SDK never loads."""

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from app.core.config import settings
from app.main import create_app
from tests.conftest import app_client


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setattr(settings, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel.invalid")
    spans = InMemorySpanExporter()
    try:
        yield spans
    finally:
        # The instrumentors are process-wide: leave none behind for other tests.
        SQLAlchemyInstrumentor().uninstrument()
        HTTPXClientInstrumentor().uninstrument()


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[int]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.context.span_id)
    return chain


async def test_a_request_is_a_server_span_with_database_spans_beneath(
    exporter: InMemorySpanExporter,
) -> None:
    async for client in app_client(create_app(span_exporter=exporter)):
        # Readiness runs a query on the app's own engine.
        response = await client.get("/health/ready")
    assert response.status_code == 200

    spans = exporter.get_finished_spans()
    servers = [span for span in spans if span.kind == SpanKind.SERVER]
    assert len(servers) == 1
    server = servers[0]
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/health/ready"
    assert server.attributes["app.request_id"] == response.headers["x-request-id"]
    queries = [
        span for span in spans if span.attributes and "db.system" in span.attributes
    ]
    assert queries, [span.name for span in spans]
    by_id = {span.context.span_id: span for span in spans}
    for query in queries:
        assert query.context.trace_id == server.context.trace_id
        assert server.context.span_id in _ancestors(query, by_id)


async def test_outgoing_httpx_calls_are_client_spans(
    exporter: InMemorySpanExporter,
) -> None:
    class Quiet(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        create_app(span_exporter=exporter)  # configures tracing, httpx included
        async with httpx.AsyncClient() as outgoing:
            answer = await outgoing.get(f"http://127.0.0.1:{server.server_port}/ping")
    finally:
        server.shutdown()
        server.server_close()

    assert answer.status_code == 204
    clients = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert len(clients) == 1
    assert clients[0].attributes is not None
    assert "/ping" in str(
        clients[0].attributes.get("url.full") or clients[0].attributes.get("http.url")
    )


def test_without_an_endpoint_the_sdk_is_never_imported() -> None:
    probe = (
        "import sys, app.main\n"
        "loaded = [m for m in sys.modules if m.startswith(("
        "'opentelemetry.sdk', 'opentelemetry.exporter', "
        "'opentelemetry.instrumentation'))]\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={
            "PATH": "",
            "DATABASE_URL": "sqlite+aiosqlite://",
            "SECRET_KEY": settings.SECRET_KEY,
            "ENVIRONMENT": "test",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",  # whatever .env says
        },
    )
    assert done.stdout.strip() == "[]", done.stderr
