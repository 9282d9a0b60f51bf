"""Database-level locks, so invariants hold under concurrent requests."""

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import BigInteger, String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.exceptions import ConflictError

LOCK_TIMEOUT_SECONDS = 10

# Built once (see the services): every write that checks an invariant runs one.
_PG_LOCK = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
_NAME = bindparam("name", type_=String)
_MYSQL_LOCK = select(func.get_lock(_NAME, LOCK_TIMEOUT_SECONDS))
_MYSQL_UNLOCK = select(func.release_lock(_NAME))


@asynccontextmanager
async def advisory_lock(session: AsyncSession, name: str) -> AsyncIterator[None]:
    """Hold a named lock while checking and writing, across all app processes.

    PostgreSQL releases it with the transaction; MySQL/MariaDB locks belong to
    the connection and are released explicitly; SQLite already admits a single
    writer at a time.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(_PG_LOCK, {"key": zlib.crc32(name.encode())})
        yield
    elif dialect in ("mysql", "mariadb"):
        acquired = await session.scalar(_MYSQL_LOCK, {"name": name})
        if acquired != 1:
            msg = "The resource is busy; try again"
            raise ConflictError(msg)
        try:
            yield
        finally:
            await session.execute(_MYSQL_UNLOCK, {"name": name})
    else:
        yield
