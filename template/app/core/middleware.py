"""ASGI middleware, written raw so it adds no per-request overhead to speak of."""

import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
