"""Route behaviour shared by every router of the API."""

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger("app.db")


class ReadRetryRoute(APIRoute):
    """A GET whose database connection turns out dead runs once more.

    GET sessions use connections that are not tested before use (a round trip
    saved per request, see app/db/session.py). After a
    database restart, pooled connections are dead: the first statement on one
    fails, SQLAlchemy drops it and every connection as old, and the retry gets
    a new one. A GET only reads, so running it twice changes nothing. If the
    database is really down, the retry fails too and the client gets the 503.
    """

    def get_route_handler(
        self,
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if "GET" not in (self.methods or set()):
            return handler

        async def retry_once(request: Request) -> Response:
            try:
                return await handler(request)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                logger.warning(
                    "Lost a database connection; running GET %s again",
                    request.url.path,
                )
                return await handler(request)

        return retry_once


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operationId: the route function's name (`create_invoice`,
    `list_invoices`, `login`), which client generators turn into method names.
    FastAPI's default appends the path and method (`create_invoice_api_v1_
    invoices_post`), which every generated SDK then carries."""
    return route.name
