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

    Check, write and flush inside the block; commit after it. PostgreSQL
    releases its lock with the transaction. A MySQL/MariaDB lock belongs to the
    connection, and a session hands its connection back to the pool when it
    commits: released after a commit, it was released on whatever connection
    the pool lent next (or none), and the lock stayed with the first one, so
    later writers waited for it in vain. It is released here, on the same
    connection, before the commit; the reads that decide the write must lock
    what they read (FOR UPDATE), so the next holder waits for that commit.
    SQLite already admits a single writer at a time.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(_PG_LOCK, {"key": zlib.crc32(name.encode())})
        yield
    elif dialect in ("mysql", "mariadb"):
        connection = await session.connection()
        acquired = await connection.scalar(_MYSQL_LOCK, {"name": name})
        if acquired != 1:
            msg = "The resource is busy; try again"
            raise ConflictError(msg)
        try:
            yield
        finally:
            try:
                await connection.execute(_MYSQL_UNLOCK, {"name": name})
            except Exception:
                # Never back to the pool holding the lock: closing releases it.
                await connection.invalidate()
                raise
    else:
        yield
