"""Application entry point: wiring, middleware and lifespan."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.docs import add_docs
from app.api.routing import operation_id
from app.api.v1.dependencies import get_login_limiter
from app.api.v1.router import api_router
from app.core.config import settings
from app.core.exceptions import register_exception_handlers
from app.core.logging import setup_logging
from app.core.middleware import (
    AllowHeaderMiddleware,
    BodyLimitMiddleware,
    RequestContextMiddleware,
)
from app.core.observability import init_sentry
from app.core.rate_limit import RateLimiter, redis_reachable
from app.db.errors import (
    RETRY_AFTER_SECONDS,
    DatabaseUnresponsive,
    register_database_error_handlers,
)
from app.db.session import SessionLocal, engine, get_engine, read_engine
from app.db.watchdog import abandon_after
from app.events.relay import relay
from app.jobs.broker import jobs
from app.modules.auth.superuser import SuperuserInputError, ensure_superuser

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

setup_logging(
    settings.LOG_LEVEL,
    settings.LOG_FORMAT or ("rich" if settings.ENVIRONMENT == "local" else "text"),
)
logger = logging.getLogger("app")


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    database: Literal["ok", "unreachable"]
    # Only with REDIS_URL set; "degraded" still serves (limits count per process).
    redis: Literal["ok", "degraded"] | None = None


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The database is unreachable", "model": Readiness}
}


async def ensure_first_superuser(
    session_factory: Callable[[], AsyncSession] = SessionLocal,
) -> None:
    """FIRST_SUPERUSER_EMAIL and _PASSWORD both set: make sure that account is a
    superuser. A bad value or an unreachable database is logged, not fatal: the
    service still starts (and `python -m app create-superuser` says more)."""
    try:
        message = await ensure_superuser(
            settings.FIRST_SUPERUSER_EMAIL,
            settings.FIRST_SUPERUSER_PASSWORD,
            session_factory,
        )
    except SuperuserInputError as exc:
        logger.error("First superuser not created: %s", exc)
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("First superuser not checked, database unavailable: %s", exc)
    else:
        logger.info(message)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    logger.info("Starting %s", settings.APP_NAME)
    if settings.FIRST_SUPERUSER_EMAIL and settings.FIRST_SUPERUSER_PASSWORD:
        await ensure_first_superuser()
    await jobs.start(schedule=True)
    yield
    # A relay under way finishes (bounded); one cut short leaves its events
    # to the sweep of the next start.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(relay.idle(), settings.GRACEFUL_SHUTDOWN_SECONDS)
    await jobs.stop()
    # Return pooled connections cleanly instead of letting the server drop them.
    await engine.dispose()
    if read_engine is not engine:
        await read_engine.dispose()
    if _app.state.tracer_provider is not None:
        _app.state.tracer_provider.shutdown()  # exports the last batch of spans
    logger.info("Stopped %s", settings.APP_NAME)


async def _database_reachable(db_engine: AsyncEngine) -> bool:
    async def select_one() -> None:
        async with db_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        # Bounded: a probe must answer even when the database has gone silent.
        await abandon_after(select_one(), settings.DB_UNAVAILABLE_AFTER)
    except (SQLAlchemyError, OSError, DatabaseUnresponsive):
        logger.warning("Readiness: database unreachable")
        return False
    return True


def _add_metrics(app: FastAPI) -> None:
    # Imported here: with METRICS_ENABLED=false, prometheus-client never loads.
    from app.core import metrics
    from app.events import metrics as event_metrics

    app.add_middleware(metrics.MetricsMiddleware)
    metrics.watch_pool(engine, "write")
    if read_engine is not engine:
        metrics.watch_pool(read_engine, "read")

    async def scrape(request: Request) -> Response:
        if metrics.authorized(settings.METRICS_TOKEN, request):
            await event_metrics.observe()
        return metrics.render(settings.METRICS_TOKEN, request)

    app.add_route("/metrics", scrape, include_in_schema=False)


def _tracer_provider(span_exporter: "SpanExporter | None") -> "TracerProvider | None":
    """A tracer provider for FastAPI's own spans, when tracing is configured."""
    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return None
    # Imported here: without an endpoint, the OpenTelemetry SDK never loads.
    from app.core.tracing import setup_tracing

    engines = [engine] if read_engine is engine else [engine, read_engine]
    return setup_tracing(
        settings.APP_NAME, settings.OTEL_EXPORTER_OTLP_ENDPOINT, engines, span_exporter
    )


def create_app(span_exporter: "SpanExporter | None" = None) -> FastAPI:
    """The application. `span_exporter` replaces the OTLP exporter (tests)."""
    init_sentry(settings.SENTRY_DSN, settings.ENVIRONMENT)
    docs = settings.DOCS_ENABLED
    provider = _tracer_provider(span_exporter)
    telemetry: TelemetryConfig | None = (
        None if provider is None else {"tracer_provider": provider}
    )
    app = FastAPI(
        title=settings.APP_NAME,
        openapi_url=f"{settings.API_V1_PREFIX}/openapi.json" if docs else None,
        # Swagger UI with its assets served here (app/api/docs.py); FastAPI's
        # own /docs and /redoc load theirs from a CDN.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        telemetry=telemetry,
        generate_unique_id_function=operation_id,
    )
    app.state.tracer_provider = provider
    if docs:
        add_docs(app, f"{settings.API_V1_PREFIX}/openapi.json")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS or [],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    register_exception_handlers(app)
    register_database_error_handlers(app)
    app.include_router(api_router, prefix=settings.API_V1_PREFIX)
    app.add_middleware(AllowHeaderMiddleware, openapi=app.openapi)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.MAX_REQUEST_BODY_BYTES)
    if settings.METRICS_ENABLED:
        _add_metrics(app)
    # Added last, so outermost: it sees every request and every unhandled error.
    app.add_middleware(
        RequestContextMiddleware,
        access_log=settings.ACCESS_LOG,
        traced=provider is not None,
    )

    @app.get("/health/live", tags=["Health"], response_model=Liveness)
    async def live() -> dict[str, str]:
        """Liveness: the process answers. Restart it only when this fails."""
        return {"status": "alive"}

    @app.get(
        "/health/ready",
        tags=["Health"],
        response_model=Readiness,
        responses=UNAVAILABLE,
    )
    async def ready(
        db_engine: Annotated[AsyncEngine, Depends(get_engine)],
        limiter: Annotated[RateLimiter, Depends(get_login_limiter)],
    ) -> JSONResponse:
        """Readiness: the database answers. Route traffic elsewhere while this
        says 503; the process itself is fine. Redis, when configured, is
        reported but never makes this fail: without it rate limits count per
        process and the service still serves, so one Redis outage must not take
        every replica out of the load balancer."""
        checks = {
            "database": "ok" if await _database_reachable(db_engine) else "unreachable"
        }
        redis = await redis_reachable(limiter)
        if redis is not None:
            checks["redis"] = "ok" if redis else "degraded"
        if checks["database"] == "ok":
            return JSONResponse({"status": "ready", **checks})
        return JSONResponse(
            {"status": "unavailable", **checks},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # Kept from earlier versions, whose orchestration may still probe it; named
    # apart so that every operation keeps a unique operationId.
    app.add_api_route(
        "/health",
        ready,
        methods=["GET"],
        name="health",
        tags=["Health"],
        response_model=Readiness,
        responses=UNAVAILABLE,
        deprecated=True,
    )

    return app


app = create_app()
