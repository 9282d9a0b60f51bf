"""ASGI middleware, written raw so it adds no per-request overhead to speak of."""

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.exceptions import error_body
from app.core.logging import request_id_var

logger = logging.getLogger("app.errors")
access_logger = logging.getLogger("app.access")

# A request id a client or proxy sends is kept if it is short and plain.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


async def _send_json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Outermost: gives each request an id (X-Request-ID), logs one access line,
    and turns an unhandled error into a 500 logged exactly once.

    Starlette's own last-resort handler answers and then re-raises, so uvicorn
    logs the error a second time and drops the keep-alive connection; here the
    error stops, and the connection stays usable.
    """

    def __init__(
        self, app: ASGIApp, *, access_log: bool = True, traced: bool = False
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.traced = traced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        if self.traced:  # FastAPI's server span is current: tag it with the id
            from app.core.tracing import tag_request

            tag_request(request_id)
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the last resort: answer, log once
            _report(scope, exc, request_id)
            if not response_started:
                await _send_json(
                    send_with_id,
                    500,
                    error_body("Internal server error", request_id=request_id),
                )
        finally:
            if self.access_log:
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                access_logger.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    scope["path"],
                    status,
                    duration_ms,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else None
    return None


def _report(scope: Scope, exc: Exception, request_id: str) -> None:
    # Clients get the id to quote; the traceback stays in the server log (and Sentry).
    # The id in the message too: handlers without the request-id filter (pytest's,
    # Sentry's breadcrumbs) still connect the line to the client's report.
    logger.error(
        "Unhandled error on %s %s (request id %s)",
        scope["method"],
        scope["path"],
        request_id,
        exc_info=exc,
    )
    if "sentry_sdk" in sys.modules:  # imported by init_sentry only when configured
        import sentry_sdk

        with sentry_sdk.new_scope() as sentry_scope:
            sentry_scope.set_tag("request_id", request_id)
            sentry_sdk.capture_exception(exc)


class BodyTooLargeError(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"Request body larger than {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before reading them.

    A declared Content-Length is checked before the app runs; a chunked body is
    counted as it streams in, and reading stops at the limit. Either way a
    worker holds at most `max_bytes` of any one body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refusal = error_body(BodyTooLargeError(max_bytes).detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_json(send, 413, self.refusal)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException: FastAPI's body parsing passes it through
                    # to the exception handlers, which answer in the one shape.
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if response_started:
                raise
            await _send_json(send, 413, self.refusal)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class AllowHeaderMiddleware:
    """Complete the `Allow` header of 405 answers.

    FastAPI registers one route per method, so a 405 for /items/1 lists only the
    first matching route's methods (GET) instead of all of them (GET, PATCH,
    DELETE). The OpenAPI schema knows them all; it is read on the first 405.
    """

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.openapi = openapi
        self._methods: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = self._allowed(scope["path"])
                if allowed:
                    headers = [
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() != b"allow"
                    ]
                    headers.append((b"allow", allowed.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def _allowed(self, path: str) -> str:
        if self._methods is None:
            self._methods = [
                (_path_regex(template), ", ".join(sorted(m.upper() for m in ops)))
                for template, item in self.openapi().get("paths", {}).items()
                if (ops := _HTTP_METHODS & set(item))
            ]
        return next((allow for regex, allow in self._methods if regex.match(path)), "")


def _path_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.compile(f"^{pattern}$")
