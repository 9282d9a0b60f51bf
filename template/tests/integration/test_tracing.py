"""OpenTelemetry: a request is a server span with database spans beneath it,
tagged with the request id; without an endpoint the SDK never loads."""

import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import settings
from app.core.tracing import stop_tracing
from app.events.jobs import relay_events
from app.jobs.broker import broker
from app.jobs.dependencies import session_factory
from app.main import app, create_app
from tests.conftest import TEST_PASSWORD, app_client
from tests.integration.test_events import Receiver


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
        stop_tracing()


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


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for target in Receiver.serving():
        yield target


async def test_a_webhook_delivery_continues_the_trace_of_the_request_that_caused_it(
    exporter: InMemorySpanExporter,
    file_database: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", True)
    traced = create_app(span_exporter=exporter)
    traced.dependency_overrides.update(app.dependency_overrides)  # the file database
    monkeypatch.setitem(
        broker.dependency_overrides, session_factory, lambda: file_database
    )
    account = {"email": "trace@example.com", "password": TEST_PASSWORD}
    async for client in app_client(traced):
        await client.post("/api/v1/auth/register", json=account)
        login = await client.post(
            "/api/v1/auth/login",
            data={"username": account["email"], "password": TEST_PASSWORD},
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        events = ["account.password_changed"]
        made = await client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": events},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        changed = await client.post(
            "/api/v1/auth/password",
            json={
                "current_password": TEST_PASSWORD,
                "new_password": TEST_PASSWORD + "!",
            },
            headers=auth,
        )
        assert changed.status_code == 200, changed.text
    (request,) = [
        span
        for span in exporter.get_finished_spans()
        if span.kind == SpanKind.SERVER
        and (span.attributes or {}).get("http.route") == "/api/v1/auth/password"
    ]
    exporter.clear()
    await relay_events(file_database)  # the relay, as a worker would run it

    assert len(receiver.received) == 1
    spans = exporter.get_finished_spans()
    (deliver,) = [span for span in spans if span.name == "webhooks.deliver"]
    assert deliver.context.trace_id == request.context.trace_id
    (post,) = [span for span in spans if span.name == "POST"]  # httpx's span
    assert post.kind == SpanKind.CLIENT
    assert post.parent is not None
    assert post.parent.span_id == deliver.context.span_id
