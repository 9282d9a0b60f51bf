"""Which database errors mean "unavailable, try again" (503) or "conflicts with
the data as it is now" (409) rather than a bug (500)."""

import logging
import re
from types import TracebackType

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from app.core.exceptions import error_body
from app.core.logging import one_line

logger = logging.getLogger("app.db")

# Seconds a client is asked to wait (Retry-After) after a 503.
RETRY_AFTER_SECONDS = 2

# PostgreSQL SQLSTATEs: connection exceptions (class 08), the server shutting
# down or starting (57P01-57P03), too many connections (53300), and a
# transaction chosen as a deadlock's victim or failing serialization (40P01,
# 40001): each succeeds when tried again.
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300", "40P01", "40001")
# MySQL/MariaDB: too many connections, lock wait timeout, deadlock, and the
# client's can't connect / server gone away / lost connection.
_MYSQL_UNAVAILABLE = {1040, 1205, 1213, 2002, 2003, 2006, 2013}
# SQLite: another writer held the database past the busy timeout.
_SQLITE_BUSY = ("database is locked", "database is busy")
# Raw OSErrors count only when a driver raised them (asyncpg connects without
# wrapping them), not when the app's own I/O did.
_DRIVERS = ("asyncpg", "aiomysql", "pymysql", "aiosqlite", "sqlalchemy")


class DatabaseUnresponsive(Exception):
    """The database answered neither this request in time nor a new connection
    (app/db/watchdog.py): lost, or cut off by the network."""


# What background work (a relay, a delivery, the feed's reader) may meet from
# the database and put off until its next run: one logged line, not a traceback.
DATABASE_ERRORS = (SQLAlchemyError, OSError, DatabaseUnresponsive)


def database_unavailable(exc: BaseException) -> bool:
    """True when the error says the database cannot be reached or is overloaded."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, PoolTimeoutError | DatabaseUnresponsive):
            return True  # every pooled connection busy, or no database answers
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


# A constraint the database checked and refused, in a race that the services'
# own checks cannot close: a unique value written by another request between
# check and commit, a referenced row (or the caller's account) deleted by
# another request meanwhile, a row still referenced when deleted.
# PostgreSQL SQLSTATEs, MySQL/MariaDB error numbers, SQLite messages.
_PG_UNIQUE, _PG_FOREIGN_KEY = "23505", "23503"
_MYSQL_UNIQUE, _MYSQL_REFERENCED, _MYSQL_MISSING = 1062, 1451, 1452
_UNIQUE = "It conflicts with an existing one: a unique value is already taken"
_MISSING = "It refers to an object that no longer exists"
_REFERENCED = "It is still referenced by {}; delete or move those first"
_DELETE = re.compile(r"\s*DELETE\s+FROM\s+[`\"]?(\w+)", re.IGNORECASE)
# The table whose rows still point at a row being deleted, as PostgreSQL and
# MySQL name it; SQLite names none.
_REFERRER = (
    re.compile(r'violates foreign key constraint "[^"]+" on table "([^"]+)"'),
    re.compile(r"foreign key constraint fails \(`[^`]*`\.`([^`]+)`"),
)


def constraint_conflict(exc: IntegrityError) -> str | None:
    """The 409 message for a unique or foreign-key refusal; None for any other
    constraint (NOT NULL, CHECK), which the schemas should have caught: a bug."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    text = str(orig)
    if sqlstate == _PG_UNIQUE or code == _MYSQL_UNIQUE or "UNIQUE constraint" in text:
        return _UNIQUE
    foreign_key = (
        sqlstate == _PG_FOREIGN_KEY
        or code in (_MYSQL_REFERENCED, _MYSQL_MISSING)
        or "FOREIGN KEY constraint" in text
    )
    if not foreign_key:
        return None
    deleting = _DELETE.match(exc.statement or "")
    if deleting is None:
        return _MISSING  # a create or update naming a row deleted meanwhile
    referrers = _referrers(text, deleting.group(1))
    return _REFERENCED.format(", ".join(referrers) or "other objects")


def _referrers(text: str, table: str) -> list[str]:
    """The tables that keep a row of `table` from being deleted: as the
    database names it, else (SQLite) every table whose foreign key to `table`
    refuses deletes."""
    for pattern in _REFERRER:
        if named := pattern.search(text):
            return [named.group(1)]
    from app.db.base import Base  # here: it imports every model

    return sorted(
        {
            key.parent.table.name
            for other in Base.metadata.tables.values()
            for key in other.foreign_keys
            if key.column.table.name == table
            and (key.ondelete or "NO ACTION").upper() in ("RESTRICT", "NO ACTION")
        }
    )


async def _integrity_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    message = constraint_conflict(exc)
    if message is None:
        raise exc  # a bug: the last-resort 500 handler logs it
    logger.info(
        "Conflict on %s %s: %s", request.method, request.url.path, one_line(exc)
    )
    return JSONResponse(error_body(message), status_code=status.HTTP_409_CONFLICT)


async def _vanished_handler(request: Request, exc: Exception) -> JSONResponse:
    # The row was deleted by another request while this one changed it.
    logger.info(
        "Conflict on %s %s: %s", request.method, request.url.path, one_line(exc)
    )
    return JSONResponse(
        error_body("It was deleted or changed by another request; fetch it again"),
        status_code=status.HTTP_409_CONFLICT,
    )


def register_database_error_handlers(app: FastAPI) -> None:
    """Answer 503 + Retry-After when a request fails because the database is
    unreachable, overloaded or locked, and 409 when it refuses a change that a
    concurrent request made impossible; anything else stays a 500."""
    for error_type in (DBAPIError, PoolTimeoutError, DatabaseUnresponsive, OSError):
        app.add_exception_handler(error_type, _unavailable_handler)
    app.add_exception_handler(IntegrityError, _integrity_handler)
    app.add_exception_handler(StaleDataError, _vanished_handler)
    app.add_exception_handler(ObjectDeletedError, _vanished_handler)
