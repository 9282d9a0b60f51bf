"""Domain errors and the handlers that turn every error into one JSON shape.

Services raise these instead of `HTTPException`, so modules stay free of web code.
"""

import logging
import uuid

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("app.errors")


class AppError(Exception):
    """Base class: carries the HTTP status and a message safe to show to clients."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(AppError):
    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, resource: str, resource_id: int | str) -> None:
        super().__init__(f"{resource} with id '{resource_id}' not found")


class UnauthorizedError(AppError):
    status_code = status.HTTP_401_UNAUTHORIZED
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012

    def __init__(self, message: str = "Not authenticated") -> None:
        super().__init__(message)


class ForbiddenError(AppError):
    status_code = status.HTTP_403_FORBIDDEN

    def __init__(self, message: str = "Permission denied") -> None:
        super().__init__(message)


class ConflictError(AppError):
    status_code = status.HTTP_409_CONFLICT


def error_body(message: str, **extra: object) -> dict[str, object]:
    """The one error shape of this API: {"detail": "..."} plus optional fields."""
    return {"detail": message, **extra}


async def _app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.message), status_code=exc.status_code, headers=exc.headers
    )


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body(str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Echoing the input back could reflect secrets (passwords) into logs and clients.
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse(
        error_body("Validation error", errors=errors),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Clients get an id to quote; the traceback stays in the server log.
    request_id = uuid.uuid4().hex
    logger.exception("Unhandled error (request id %s)", request_id, exc_info=exc)
    return JSONResponse(
        error_body("Internal server error", request_id=request_id),
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)
