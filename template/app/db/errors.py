"""Which database errors mean "unavailable, try again" (503) rather than a bug (500)."""

import logging
from types import TracebackType

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.exceptions import error_body
from app.core.logging import one_line

logger = logging.getLogger("app.db")

# Seconds a client is asked to wait (Retry-After) after a 503.
RETRY_AFTER_SECONDS = 2

# PostgreSQL SQLSTATEs: connection exceptions (class 08), the server shutting
# down or starting (57P01-57P03), too many connections (53300).
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
# MySQL/MariaDB: too many connections, lock wait timeout, deadlock, and the
# client's can't connect / server gone away / lost connection.
_MYSQL_UNAVAILABLE = {1040, 1205, 1213, 2002, 2003, 2006, 2013}
# SQLite: another writer held the database past the busy timeout.
_SQLITE_BUSY = ("database is locked", "database is busy")
# Raw OSErrors count only when a driver raised them (asyncpg connects without
# wrapping them), not when the app's own I/O did.
_DRIVERS = ("asyncpg", "aiomysql", "pymysql", "aiosqlite", "sqlalchemy")


def database_unavailable(exc: BaseException) -> bool:
    """True when the error says the database cannot be reached or is overloaded."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, PoolTimeoutError):
            return True  # every pooled connection busy for DB_POOL_TIMEOUT
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, OSError) and _raised_by_driver(error.__traceback__):
            return True
        if _unavailable_code(error):
            return True
        orig = getattr(error, "orig", None)
        error = (
            orig
            if isinstance(orig, BaseException) and id(orig) not in seen
            else (error.__cause__ or error.__context__)
        )
    return False


def _unavailable_code(error: BaseException) -> bool:
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_UNAVAILABLE):
        return True
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_UNAVAILABLE:
        return True
    return type(error).__name__ == "OperationalError" and str(error).startswith(
        _SQLITE_BUSY
    )


def _raised_by_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] in _DRIVERS:
            return True
        traceback = traceback.tb_next
    return False


async def _unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    if not database_unavailable(exc):
        raise exc  # a bug, not an outage: the last-resort 500 handler logs it
    # One line, no traceback: during an outage every request fails the same way,
    # and rendering thousands of tracebacks would cost the CPU recovery needs.
    logger.warning(
        "Database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        one_line(exc),
    )
    return JSONResponse(
        error_body("The database is unavailable; try again shortly"),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def register_database_error_handlers(app: FastAPI) -> None:
    """Answer 503 + Retry-After when a request fails because the database is
    unreachable, overloaded or locked; anything else stays a 500."""
    for error_type in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(error_type, _unavailable_handler)
