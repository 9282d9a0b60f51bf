"""Application entry point: wiring, middleware and lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.v1.router import api_router
from app.core.config import settings
from app.core.exceptions import register_exception_handlers
from app.core.logging import setup_logging
from app.core.middleware import AllowHeaderMiddleware
from app.core.observability import init_sentry
from app.db.session import engine, get_engine

setup_logging(settings.LOG_LEVEL)
logger = logging.getLogger("app")


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    logger.info("Starting %s", settings.APP_NAME)
    yield
    # Return pooled connections cleanly instead of letting the server drop them.
    await engine.dispose()
    logger.info("Stopped %s", settings.APP_NAME)


def create_app() -> FastAPI:
    init_sentry(settings.SENTRY_DSN, settings.ENVIRONMENT)
    docs = settings.DOCS_ENABLED
    app = FastAPI(
        title=settings.APP_NAME,
        openapi_url=f"{settings.API_V1_PREFIX}/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        lifespan=lifespan,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    register_exception_handlers(app)
    app.include_router(api_router, prefix=settings.API_V1_PREFIX)
    app.add_middleware(AllowHeaderMiddleware, openapi=app.openapi)

    @app.get(
        "/health",
        tags=["Health"],
        responses={503: {"description": "The database is unreachable"}},
    )
    async def health(
        db_engine: Annotated[AsyncEngine, Depends(get_engine)],
    ) -> JSONResponse:
        """Liveness and database reachability."""
        try:
            async with db_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            logger.warning("Health check: database unreachable")
            return JSONResponse(
                {"status": "unhealthy", "database": "unreachable"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return JSONResponse({"status": "healthy", "database": "ok"})

    return app


app = create_app()
