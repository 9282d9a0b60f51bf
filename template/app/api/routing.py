"""Route behaviour shared by every router of the API."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from app.core.config import settings
from app.db.errors import DatabaseUnresponsive
from app.db.session import PATIENCE_SECONDS, watchdog
from app.db.watchdog import Guard

logger = logging.getLogger("app.db")


class ReadRetryRoute(APIRoute):
    """A GET whose database connection turns out dead runs once more, and a GET
    whose database stops answering gets its 503 in DB_UNAVAILABLE_AFTER.

    GET sessions use connections that are not tested before use (a round trip
    saved per request, see app/db/session.py). After a
    database restart, pooled connections are dead: the first statement on one
    fails, SQLAlchemy drops it and every connection as old, and the retry gets
    a new one. A GET only reads, so running it twice changes nothing. If the
    database is really down, the retry fails too and the client gets the 503.

    A connection the network silently lost fails nothing: its statement just
    waits. So a GET still waiting after a quarter of DB_UNAVAILABLE_AFTER asks
    the watchdog, and is cancelled (503) if no new connection answers either.
    The handler runs in the request's own task throughout: FastAPI's
    dependencies must be entered and left in one task.
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

        if settings.DATABASE_URL.startswith("sqlite"):
            return retry_once  # a local file: no network to lose

        async def answer_or_give_up(request: Request) -> Response:
            task = asyncio.current_task()
            assert task is not None
            guard = Guard(watchdog, task, PATIENCE_SECONDS)
            try:
                return await retry_once(request)
            except asyncio.CancelledError:
                # The guard's cancellation, and nobody else's: a 503 now.
                if guard.fired and task.uncancel() == 0:
                    raise DatabaseUnresponsive from None
                raise
            finally:
                guard.stand_down()

        return answer_or_give_up


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operationId: the route function's name (`create_invoice`,
    `list_invoices`, `login`), which client generators turn into method names.
    FastAPI's default appends the path and method (`create_invoice_api_v1_
    invoices_post`), which every generated SDK then carries."""
    return route.name
