"""Domain errors and the handlers that turn every error into one JSON shape.

Services raise these instead of `HTTPException`, so modules stay free of web code.
"""

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    """Base class: carries the HTTP status and a message safe to show to clients."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(AppError):
    """Input that is well-formed but cannot be used (a wrong current password)."""

    status_code = status.HTTP_400_BAD_REQUEST


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


class InvalidFieldError(AppError):
    """A value valid alone but not with the others (an end before its start): a
    422 in the shape request validation answers, naming the field."""

    status_code = status.HTTP_422_UNPROCESSABLE_CONTENT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TooManyRequestsError(AppError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many requests; try again later")
        self.headers = {"Retry-After": str(retry_after)}


def error_body(message: str, **extra: object) -> dict[str, object]:
    """The one error shape of this API: {"detail": "..."} plus optional fields."""
    return {"detail": message, **extra}


class ErrorResponse(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """The 422 body: the common {"detail": ...} shape plus the offending fields."""

    detail: str
    errors: list[FieldError]


async def _app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, InvalidFieldError):
        body = ValidationErrorResponse(
            detail="Validation error",
            errors=[
                FieldError(loc=["body", exc.field], msg=exc.message, type="value_error")
            ],
        )
        return JSONResponse(body.model_dump(), status_code=exc.status_code)
    return JSONResponse(
        error_body(exc.message), status_code=exc.status_code, headers=exc.headers
    )


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        # FastAPI's answer to a body it cannot decode: to clients, invalid input
        # like any other, with the documented 422 shape.
        body = ValidationErrorResponse(
            detail="Validation error",
            errors=[FieldError(loc=["body"], msg=str(exc.detail), type="body_invalid")],
        )
        return JSONResponse(
            body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    return JSONResponse(
        error_body(str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Echoing the input back could reflect secrets (passwords) into logs and clients.
    body = ValidationErrorResponse(
        detail="Validation error",
        errors=[
            FieldError(loc=list(error["loc"]), msg=error["msg"], type=error["type"])
            for error in exc.errors()
        ],
    )
    return JSONResponse(
        body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


# Answers any operation can give, whatever its own code does (413: any that
# takes a body).
_EVERYWHERE = {
    "413": "Request body too large (MAX_REQUEST_BODY_BYTES)",
    "503": "The database is unavailable; retry after Retry-After seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
# Headers that come with an answer wherever it is given.
_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: Bearer",
            "schema": {"type": "string"},
        }
    },
    "429": _RETRY_AFTER,
    "503": _RETRY_AFTER,
}


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bounds(node: object) -> None:
    """FastAPI's OpenAPI models keep numeric bounds as floats, so a bigint's
    2**63 - 1 was published as 9.223372036854776e18, which is 2**63: clients
    and fuzzers then send values the server refuses. Integral bounds go back to
    integers; the one float that stood for 2**63 - 1 goes back to it exactly."""
    if isinstance(node, dict):
        for key in _BOUNDS:
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                node[key] = 2**63 - 1 if value == 2.0**63 else int(value)
        for child in node.values():
            _exact_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_bounds(child)


def _document_errors(app: FastAPI) -> None:
    """Make the OpenAPI schema describe the error bodies this app really sends:
    the 422 shape, the 413 and 503 every operation can answer, and the headers
    that come with 401, 429 and 503."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault("ErrorResponse", ErrorResponse.model_json_schema())
            error = {"$ref": "#/components/schemas/ErrorResponse"}
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    responses = operation.setdefault("responses", {})
                    for code, description in _EVERYWHERE.items():
                        if code == "413" and "requestBody" not in operation:
                            continue
                        responses.setdefault(
                            code,
                            {
                                "description": description,
                                "content": {"application/json": {"schema": error}},
                            },
                        )
                    for code, headers in _HEADERS.items():
                        if code in responses:
                            responses[code].setdefault("headers", {}).update(headers)
            if "HTTPValidationError" in components:
                documented = ValidationErrorResponse.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
                components.update(documented.pop("$defs", {}))
                # The key FastAPI's paths refer to, and the same title, so that
                # every client generator gives the 422 body one name.
                documented["title"] = "HTTPValidationError"
                components["HTTPValidationError"] = documented
                components.pop("ValidationError", None)
            _exact_bounds(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    # Unhandled errors: RequestContextMiddleware (app/core/middleware.py).
    _document_errors(app)
